"""WhatsApp templates: which ticket values fill the template's body variables."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column(
        "social_account", "template_parameters",
        CharField(max_length=200, default="")))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("social_account", "template_parameters"))
