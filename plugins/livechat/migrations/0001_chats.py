"""Live chat's tables: a chat beside each livechat ticket, and agents' availability."""
from peewee import *


def up(migrator, db):
    class Department(Model):
        class Meta:
            database = db
            table_name = "department"

    class Staff(Model):
        class Meta:
            database = db
            table_name = "staff"

    class Ticket(Model):
        class Meta:
            database = db
            table_name = "ticket"

    class Chat(Model):
        ticket = ForeignKeyField(Ticket, unique=True, on_delete="CASCADE")
        visitor = CharField(max_length=64, index=True)
        state = CharField(max_length=16, default="bot", index=True)
        language = CharField(max_length=8, default="en")
        department = ForeignKeyField(Department, null=True, on_delete="SET NULL")
        agent = ForeignKeyField(Staff, null=True, on_delete="SET NULL")
        offered_to = ForeignKeyField(Staff, null=True, on_delete="SET NULL",
                                     column_name="offered_to_id")
        bot_step = CharField(max_length=16, default="ask")
        unhelpful = IntegerField(default=0)
        bot_resolved = BooleanField(default=False)
        handed_over_at = DateTimeField(null=True)
        handover_reason = CharField(max_length=32, default="")
        accepted_at = DateTimeField(null=True)
        first_human_reply_at = DateTimeField(null=True)
        closed_at = DateTimeField(null=True)
        visitor_typing_at = DateTimeField(null=True)
        rating = IntegerField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "livechat_chat"

    class AgentPresence(Model):
        staff = ForeignKeyField(Staff, unique=True, on_delete="CASCADE")
        available = BooleanField(default=False)
        max_chats = IntegerField(default=0)
        last_offered_at = DateTimeField(null=True)
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "livechat_agent"

    db.create_tables([Chat, AgentPresence])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("livechat_chat"), migrator.drop_table("livechat_agent"))
