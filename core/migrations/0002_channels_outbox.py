"""The outbox and the raw original on messages; admins' wording of notifications."""
from peewee import *


def up(migrator, db):
    columns = [
        ("raw_size", IntegerField(default=0)),
        ("raw_type", CharField(max_length=100, default="")),
        ("notification", CharField(max_length=32, default="")),
        ("subject", CharField(max_length=250, default="")),
        ("recipient", CharField(max_length=254, default="")),
        ("delivery_key", CharField(max_length=64, null=True)),
        ("delivery_attempts", IntegerField(default=0)),
        ("next_attempt_at", DateTimeField(null=True)),
        ("claimed_until", DateTimeField(null=True)),
    ]
    migrator.migrate(*[migrator.add_column("message", name, field) for name, field in columns])
    migrator.migrate(
        migrator.add_index("message", ("delivery_key",), True),
        migrator.drop_index("message", "message_delivery_state"),
        migrator.add_index("message", ("delivery_state", "next_attempt_at"), False),
    )

    class NotificationTemplate(Model):
        key = CharField(max_length=32)
        language = CharField(max_length=8)
        subject = CharField(max_length=250, default="")
        body = TextField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "notification_template"
            indexes = ((("key", "language"), True),)

    db.create_tables([NotificationTemplate])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("notification_template"))
