"""Social channel accounts and the webhook inbox."""
import datetime as dt

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

    class SocialAccount(Model):
        platform = CharField(max_length=32)
        name = CharField(max_length=100, unique=True)
        slug = CharField(max_length=64, unique=True)
        handle = CharField(max_length=100, default="")
        external_id = CharField(max_length=100, default="")
        secrets = TextField(default="")
        enabled = BooleanField(default=True)
        category = ForeignKeyField(Category, null=True, on_delete="SET NULL")
        department = ForeignKeyField(Department, null=True, on_delete="SET NULL")
        template_name = CharField(max_length=100, default="")
        template_language = CharField(max_length=20, default="en")
        created_at = DateTimeField(default=dt.datetime.utcnow)

        class Meta:
            database = db
            table_name = "social_account"

    class SocialInbox(Model):
        account = ForeignKeyField(SocialAccount, on_delete="CASCADE")
        update_key = CharField(max_length=100)
        body = BlobField()
        state = CharField(max_length=16, default="pending")
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(null=True)
        claimed_until = DateTimeField(null=True)
        error = TextField(default="")
        received_at = DateTimeField(default=dt.datetime.utcnow)
        processed_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "social_inbox"
            indexes = (
                (("account", "update_key"), True),
                (("state", "next_attempt_at"), False),
            )

    db.create_tables([SocialAccount, SocialInbox])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("social_inbox"))
    migrator.migrate(migrator.drop_table("social_account"))
