"""The plugin's own model, with a foreign key into core."""

import peewee as pw

from core.db import BaseModel
from core.models import Ticket


class SatisfactionRating(BaseModel):
    ticket = pw.ForeignKeyField(Ticket, on_delete="CASCADE")
    score = pw.IntegerField()
