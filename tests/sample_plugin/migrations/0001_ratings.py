"""A plugin's own table, created by its own numbered script."""
from peewee import *


def up(migrator, db):
    class Ticket(Model):
        class Meta:
            database = db
            table_name = "ticket"

    class SatisfactionRating(Model):
        ticket = ForeignKeyField(Ticket, on_delete="CASCADE")
        score = IntegerField()

        class Meta:
            database = db
            table_name = "satisfaction_rating"

    db.create_tables([SatisfactionRating])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("satisfaction_rating"))
