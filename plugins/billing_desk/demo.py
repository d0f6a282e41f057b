"""Demo billing centers for `loket demo`: real processors' names and statement descriptors.

Their addresses are on reserved example domains and their phone numbers in the
fictional 555 range, so a demo desk never writes or calls a real company.
"""

from __future__ import annotations

from core.models import Department

from .models import BillingCenter, slugify

# name, descriptors, email, phone, web page, notes
CENTERS = [
    ("CCBill", "CCBILL.COM\nCCBILL.COM*\nCCBILL*\nCCBILL LLC",
     "consumer-support@ccbill.example", "+1 800 555 0101", "https://support.ccbill.com",
     "Refunds within 30 days of the charge; they need the subscription id from the "
     "confirmation email."),
    ("Epoch", "EPOCH.COM\nEPOCH *SUPPORT\nEPOCH *BILLING\nEPOCH.COM*",
     "billing-support@epoch.example", "+1 800 555 0102", "https://epoch.com",
     "Ask the customer for the Epoch member id (starts with the letters EP)."),
    ("Segpay", "SEGPAY.COM\nSEGPAY*EU\nSEGPAY.COM*\nSEGPAY EU",
     "support@segpay.example", "+1 800 555 0103", "https://segpay.com",
     "European cards are billed by Segpay EU in EUR."),
    ("Verotel", "VEROTEL\nVTSUP.COM\nVEROTEL*VTSUP\nCARDBILLING.COM",
     "support@verotel.example", "+31 20 555 0104", "https://www.vtsup.com",
     "Customers can cancel themselves at vtsup.com with their email and card's last digits."),
    ("PayPal", "PAYPAL *\nPAYPAL *SITE\nPP*",
     "disputes@paypal.example", "+1 800 555 0105", "https://www.paypal.com/disputes",
     "Disputes opened in PayPal's resolution center go to management at once."),
]


def load() -> None:
    """Add the demo centers that are missing; safe to run again."""
    billing = Department.get_or_none(Department.slug == "billing")
    for position, (name, descriptors, email, phone, website, notes) in enumerate(CENTERS, 1):
        if BillingCenter.get_or_none(BillingCenter.name == name) is None:
            BillingCenter.create(name=name, slug=slugify(name), descriptors=descriptors,
                                 email=email, phone=phone, website=website, notes=notes,
                                 department=billing, position=position)
