"""Whether the visitor has the widget open now, what agents have read, and agents typing."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("livechat_chat", "present_until", DateTimeField(null=True)),
        migrator.add_column("livechat_chat", "agent_read_id", IntegerField(default=0)),
        migrator.add_column("livechat_chat", "agent_typing_at", DateTimeField(null=True)),
        migrator.add_column("livechat_chat", "agent_event_at", DateTimeField(null=True)),
        migrator.add_index("livechat_chat", ("agent_event_at",), False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("livechat_chat", "livechat_chat_agent_event_at"),
                     migrator.drop_column("livechat_chat", "agent_event_at"),
                     migrator.drop_column("livechat_chat", "present_until"),
                     migrator.drop_column("livechat_chat", "agent_read_id"),
                     migrator.drop_column("livechat_chat", "agent_typing_at"))
