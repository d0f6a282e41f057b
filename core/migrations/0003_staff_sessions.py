"""Console sessions kept on the server, so signing out, a new password or deactivation end them."""
from peewee import *


def up(migrator, db):
    class Staff(Model):
        class Meta:
            database = db
            table_name = 'staff'

    class StaffSession(Model):
        token_hash = CharField(unique=True, max_length=64)
        staff = ForeignKeyField(Staff, on_delete='CASCADE')
        password_fingerprint = CharField(max_length=16)
        created_at = DateTimeField()
        expires_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'staff_session'
    db.create_tables([StaffSession])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('staff_session'))
