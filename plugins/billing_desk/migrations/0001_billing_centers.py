"""Billing centers, the phrases that route billing tickets, dispute thresholds, billing cases."""
from peewee import *


def up(migrator, db):
    class Department(Model):
        class Meta:
            database = db
            table_name = "department"

    class Ticket(Model):
        class Meta:
            database = db
            table_name = "ticket"

    class BillingCenter(Model):
        name = CharField(max_length=120, unique=True)
        slug = CharField(max_length=64, unique=True)
        descriptors = TextField(default="")
        email = CharField(max_length=254, default="")
        phone = CharField(max_length=64, default="")
        website = CharField(max_length=300, default="")
        notes = TextField(default="")
        department = ForeignKeyField(Department, null=True, on_delete="SET NULL")
        active = BooleanField(default=True)
        position = IntegerField(default=0)
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "billing_center"

    class BillingPhrase(Model):
        text = CharField(max_length=120)
        language = CharField(max_length=8, default="en")
        kind = CharField(max_length=16, default="strong")
        request_kind = CharField(max_length=16, default="")
        active = BooleanField(default=True)

        class Meta:
            database = db
            table_name = "billing_phrase"
            indexes = ((("language", "text"), True),)

    class DisputeThreshold(Model):
        currency = CharField(max_length=3, unique=True)
        amount = DecimalField(max_digits=18, decimal_places=2)

        class Meta:
            database = db
            table_name = "billing_dispute_threshold"

    class BillingCase(Model):
        ticket = ForeignKeyField(Ticket, unique=True, on_delete="CASCADE")
        center = ForeignKeyField(BillingCenter, null=True, on_delete="SET NULL")
        request_kind = CharField(max_length=16, default="")
        transaction_id = CharField(max_length=120, default="")
        amount = DecimalField(max_digits=18, decimal_places=2, null=True)
        currency = CharField(max_length=3, default="")
        charged_on = DateField(null=True)
        matched = CharField(max_length=255, default="")
        escalation_reason = CharField(max_length=255, default="")
        created_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "billing_case"

    db.create_tables([BillingCenter, BillingPhrase, DisputeThreshold, BillingCase])


def down(migrator, db):
    for table in ("billing_case", "billing_dispute_threshold", "billing_phrase",
                  "billing_center"):
        migrator.migrate(migrator.drop_table(table))
