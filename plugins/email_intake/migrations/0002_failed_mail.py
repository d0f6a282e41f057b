"""The failed-mail list: mail the desk kept but could not turn into a ticket message."""
from peewee import *


def up(migrator, db):
    class FailedMail(Model):
        received_at = DateTimeField(index=True)
        via = CharField(max_length=16)
        mailbox = CharField(max_length=254, default="")
        outcome = CharField(max_length=32)
        reason = TextField(default="")
        sender = CharField(max_length=254, default="")
        subject = CharField(max_length=250, default="")
        message_id = CharField(max_length=255, default="", index=True)
        raw = BlobField()
        raw_size = IntegerField(default=0)
        retried_at = DateTimeField(null=True)
        retry_outcome = CharField(max_length=32, default="")
        ticket_number = IntegerField(null=True)

        class Meta:
            database = db
            table_name = "email_failed_mail"

    db.create_tables([FailedMail])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("email_failed_mail"))
