"""Mailboxes read over IMAP, and which mailbox each mail read came through."""
from peewee import *


def up(migrator, db):
    class Category(Model):
        class Meta:
            database = db
            table_name = "category"

    class Department(Model):
        class Meta:
            database = db
            table_name = "department"

    class Mailbox(Model):
        name = CharField(max_length=100, unique=True)
        address = CharField(max_length=254)
        enabled = BooleanField(default=True)
        imap_host = CharField(max_length=253)
        imap_port = IntegerField(default=0)
        imap_security = CharField(max_length=16, default="ssl")
        imap_user = CharField(max_length=254)
        imap_password = TextField(default="")
        folder = CharField(max_length=200, default="INBOX")
        after_ingest = CharField(max_length=16, default="seen")
        move_to = CharField(max_length=200, default="")
        default_category = ForeignKeyField(Category, null=True, on_delete="SET NULL")
        department = ForeignKeyField(Department, null=True, on_delete="SET NULL")
        from_name = CharField(max_length=120, default="")
        from_address = CharField(max_length=254, default="")
        smtp_host = CharField(max_length=253, default="")
        smtp_port = IntegerField(default=0)
        smtp_security = CharField(max_length=16, default="starttls")
        smtp_user = CharField(max_length=254, default="")
        smtp_password = TextField(default="")
        uidvalidity = BigIntegerField(null=True)
        last_uid = BigIntegerField(default=0)
        last_success_at = DateTimeField(null=True)
        last_error = TextField(default="")
        last_error_at = DateTimeField(null=True)
        failures = IntegerField(default=0)
        fetched = BigIntegerField(default=0)
        lease_owner = CharField(max_length=200, null=True)
        lease_until = DateTimeField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "email_mailbox"

    class MailboxArrival(Model):
        raw_sha256 = CharField(max_length=64)
        mailbox = ForeignKeyField(Mailbox, on_delete="CASCADE")
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "email_mailbox_arrival"
            indexes = ((("raw_sha256", "mailbox"), True),)

    db.create_tables([Mailbox, MailboxArrival])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("email_mailbox_arrival"),
                     migrator.drop_table("email_mailbox"))
