"""The name a customer gave with a ticket, kept on the ticket rather than renaming the contact."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("ticket", "requester_name", CharField(max_length=200, default="")))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("ticket", "requester_name"))
