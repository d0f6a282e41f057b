"""The send ledger: each part of an outbound message is marked in flight before it is sent."""
import datetime as dt

from peewee import *


def up(migrator, db):
    class Message(Model):
        class Meta:
            database = db
            table_name = "message"

    class SocialSend(Model):
        message = ForeignKeyField(Message, on_delete="CASCADE")
        part = IntegerField()
        retries = IntegerField(default=0)
        state = CharField(max_length=16)
        external_id = CharField(max_length=255, default="")
        started_at = DateTimeField(default=dt.datetime.utcnow)

        class Meta:
            database = db
            table_name = "social_send"
            indexes = ((("message", "part"), True),)

    db.create_tables([SocialSend])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("social_send"))
