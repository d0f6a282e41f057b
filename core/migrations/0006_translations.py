"""Admins' translations of what customers read (user types, categories, form fields)."""
from peewee import *


def up(migrator, db):
    class Translation(Model):
        model = CharField(max_length=64)
        row_id = IntegerField()
        field = CharField(max_length=64)
        language = CharField(max_length=8)
        text = TextField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "translation"
            indexes = ((("language", "model", "row_id", "field"), True),)

    db.create_tables([Translation])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("translation"))
