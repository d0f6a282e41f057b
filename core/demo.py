"""Demo data for a first look at the desk: `loket demo`. Safe to run again; it adds what is missing.

Tickets are opened and worked through ``core.services.tickets``, like real
ones, so routing, hooks and the audit trail are real too. Customers write
from reserved ``example.*`` domains, and demo tickets use the web channel, so
no reply is ever sent anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import db
from .models import (
    Category,
    CategoryField,
    Channel,
    Department,
    FieldKind,
    IdentityKind,
    Message,
    Priority,
    Role,
    Staff,
    StaffDepartment,
    Status,
    Ticket,
    Translation,
    UserType,
    clock_at,
    utcnow,
)
from .passwords import hash_password
from .state import loket

USER_TYPES = [
    ("member", "Member", "You use the site as a member or subscriber."),
    ("model", "Independent model", "You publish your own content and are paid out directly."),
    ("studio", "Studio", "You manage several models and are paid out as a company."),
]

# slug, name, escalates to
DEPARTMENTS = [
    ("management", "Management", None),
    ("support", "Support", "management"),
    ("billing", "Billing", "management"),
    ("trust-safety", "Trust & Safety", "management"),
]

BILLING_CENTERS = "CCBill\nEpoch\nSegpay\nVerotel\nPayPal"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    kind: str
    required: bool = False
    choices: str = ""
    help_text: str = ""


REGISTERED_EMAIL = FieldSpec("registered_email", "Registered email", FieldKind.EMAIL, True,
                             help_text="The address you signed up with.")
TIME_OF_INCIDENT = FieldSpec("time_of_incident", "Time of incident", FieldKind.DATETIME,
                             help_text="When it happened, as closely as you know.")
BILLING_CENTER = FieldSpec("billing_center", "Billing center", FieldKind.CHOICE,
                           choices=BILLING_CENTERS,
                           help_text="The name on your bank or card statement.")
TRANSACTION_ID = FieldSpec("transaction_id", "Transaction id", FieldKind.TEXT,
                           help_text="From the payment confirmation email.")
SCREENSHOT = FieldSpec("screenshot", "Screenshot", FieldKind.FILE,
                       help_text="A picture of the error helps us a lot.")


@dataclass(frozen=True)
class CategorySpec:
    slug: str
    name: str
    department: str | None
    description: str = ""
    priority: str = Priority.NORMAL
    fields: tuple[FieldSpec, ...] = ()
    children: tuple[CategorySpec, ...] = ()


LOGIN = CategorySpec("registration-and-login", "Registration and login", "support",
                     "Signing up, verifying your email, passwords and two-step sign-in.",
                     fields=(REGISTERED_EMAIL,))
ACCOUNT = CategorySpec("account", "Account", "support",
                       "Profile, privacy settings, closing your account.")
TECHNICAL = CategorySpec("technical-problems", "Technical problems", "support",
                         "Pages that do not load, videos that stop, app errors.",
                         fields=(TIME_OF_INCIDENT, SCREENSHOT))
CATEGORIES: dict[str, list[CategorySpec]] = {
    "member": [
        LOGIN,
        CategorySpec(
            "payments-and-subscriptions", "Payments and subscriptions", "billing",
            "Charges, renewals and cancelling a subscription.", Priority.HIGH,
            fields=(BILLING_CENTER, TRANSACTION_ID),
            children=(
                CategorySpec("refunds", "Refunds", None, "Asking for money back.",
                             fields=(TRANSACTION_ID,)),
                CategorySpec("failed-payments", "Failed payments", None,
                             "A card that was declined or charged twice.",
                             fields=(BILLING_CENTER,)),
            )),
        ACCOUNT,
        TECHNICAL,
    ],
    "model": [
        LOGIN,
        CategorySpec("payouts", "Payouts and earnings", "billing",
                     "Payout schedule, payout methods, tax forms.", Priority.HIGH,
                     fields=(TRANSACTION_ID,)),
        CategorySpec("content", "Content", "trust-safety",
                     "Uploads, review of your content, copyright and takedowns.",
                     fields=(TIME_OF_INCIDENT,)),
        ACCOUNT,
        TECHNICAL,
    ],
    "studio": [
        LOGIN,
        CategorySpec("payouts", "Payouts and earnings", "billing",
                     "Company payouts and statements.", Priority.HIGH),
        CategorySpec("content", "Content", "trust-safety",
                     "Your models' content, releases and takedowns."),
        ACCOUNT,
        TECHNICAL,
    ],
}

# What customers read of the demo set-up, in Indonesian and Filipino, by its English text
# (the rows themselves are English, the demo desk's default language). Admins change or
# add to these in the console (Set-up > Translations); a run again never overwrites them.
TRANSLATIONS: dict[str, tuple[str, str]] = {
    # user types
    "Member": ("Anggota", "Member"),
    "You use the site as a member or subscriber.": (
        "Anda menggunakan situs sebagai anggota atau pelanggan.",
        "Gumagamit ka ng site bilang member o subscriber."),
    "Independent model": ("Model independen", "Independent model"),
    "You publish your own content and are paid out directly.": (
        "Anda memublikasikan konten sendiri dan menerima pembayaran secara langsung.",
        "Ikaw mismo ang nagpo-post ng content mo at direkta kang binabayaran."),
    "Studio": ("Studio", "Studio"),
    "You manage several models and are paid out as a company.": (
        "Anda mengelola beberapa model dan menerima pembayaran sebagai perusahaan.",
        "Ikaw ang nagma-manage ng ilang model at binabayaran ka bilang kumpanya."),
    # categories
    "Registration and login": ("Pendaftaran dan masuk", "Registration at pag-login"),
    "Signing up, verifying your email, passwords and two-step sign-in.": (
        "Mendaftar, verifikasi email, kata sandi, dan verifikasi dua langkah.",
        "Pag-sign up, pag-verify ng email, password, at two-step sign-in."),
    "Account": ("Akun", "Account"),
    "Profile, privacy settings, closing your account.": (
        "Profil, pengaturan privasi, dan penutupan akun.",
        "Profile, privacy settings, at pagsara ng account mo."),
    "Technical problems": ("Masalah teknis", "Mga technical na problema"),
    "Pages that do not load, videos that stop, app errors.": (
        "Halaman yang tidak termuat, video yang berhenti, dan error aplikasi.",
        "Mga page na ayaw mag-load, video na humihinto, at error sa app."),
    "Payments and subscriptions": ("Pembayaran dan langganan", "Mga bayad at subscription"),
    "Charges, renewals and cancelling a subscription.": (
        "Tagihan, perpanjangan, dan pembatalan langganan.",
        "Mga charge, renewal, at pag-cancel ng subscription."),
    "Refunds": ("Pengembalian dana", "Mga refund"),
    "Asking for money back.": ("Meminta uang Anda kembali.", "Paghingi ng refund."),
    "Failed payments": ("Pembayaran gagal", "Mga pumalyang bayad"),
    "A card that was declined or charged twice.": (
        "Kartu yang ditolak atau tertagih dua kali.",
        "Card na na-decline o nasingil nang dalawang beses."),
    "Payouts and earnings": ("Pembayaran dan penghasilan", "Payouts at kita"),
    "Payout schedule, payout methods, tax forms.": (
        "Jadwal pembayaran, metode pembayaran, dan formulir pajak.",
        "Schedule ng payout, mga payout method, at tax forms."),
    "Content": ("Konten", "Content"),
    "Uploads, review of your content, copyright and takedowns.": (
        "Unggahan, peninjauan konten Anda, hak cipta, dan penghapusan konten.",
        "Mga upload, review ng content mo, copyright, at takedown."),
    "Company payouts and statements.": (
        "Pembayaran perusahaan dan laporan keuangannya.",
        "Mga payout at statement ng kumpanya."),
    "Your models' content, releases and takedowns.": (
        "Konten model Anda, surat persetujuan (release), dan penghapusan konten.",
        "Content ng mga model mo, mga release, at takedown."),
    # form questions
    "Registered email": ("Email terdaftar", "Registered email"),
    "The address you signed up with.": (
        "Alamat email yang Anda gunakan saat mendaftar.",
        "Ang email address na ginamit mo sa pag-sign up."),
    "Time of incident": ("Waktu kejadian", "Oras ng insidente"),
    "When it happened, as closely as you know.": (
        "Kapan hal itu terjadi, setepat yang Anda ketahui.",
        "Kailan ito nangyari, kahit tantiya lang."),
    "Billing center": ("Pusat penagihan", "Billing center"),
    "The name on your bank or card statement.": (
        "Nama yang tertera di mutasi rekening atau tagihan kartu Anda.",
        "Ang pangalang nakalagay sa bank o card statement mo."),
    "Transaction id": ("ID transaksi", "Transaction ID"),
    "From the payment confirmation email.": (
        "Tertera di email konfirmasi pembayaran.",
        "Makikita ito sa payment confirmation email."),
    "Screenshot": ("Tangkapan layar", "Screenshot"),
    "A picture of the error helps us a lot.": (
        "Gambar dari error tersebut sangat membantu kami.",
        "Malaking tulong sa amin ang screenshot ng error."),
}
TRANSLATED_LANGUAGES = ("id", "fil")

# email, name, departments
AGENTS = [
    ("sari@loket.test", "Sari Wulandari", ("support", "trust-safety")),
    ("miguel@loket.test", "Miguel Santos", ("billing", "management")),
]


@dataclass(frozen=True)
class TicketSpec:
    """A demo ticket and what the desk did with it; steps run in order through the services."""

    key: str
    user_type: str
    category: str  # slug path, "parent/child"
    name: str
    email: str
    subject: str
    text: str
    language: str = "en"
    form_data: dict[str, Any] = field(default_factory=dict)
    steps: tuple[tuple[str, ...], ...] = ()


# Steps: ("assign", agent email), ("reply", agent email, text[, status]),
# ("note", agent email, text), ("customer", text), ("status", agent email, status),
# ("escalate", agent email, reason).
SARI, MIGUEL = AGENTS[0][0], AGENTS[1][0]
TICKETS = [
    TicketSpec("login-1", "member", "registration-and-login", "Dewi Lestari",
               "dewi.lestari@example.com", "Verification email never arrives",
               "I signed up an hour ago but the verification email is not in my inbox or spam.",
               form_data={"registered_email": "dewi.lestari@example.com"}),
    TicketSpec("login-2", "member", "registration-and-login", "Tom Becker",
               "tom.becker@example.net", "Locked out after changing phone",
               "My two-step codes went to my old phone. How do I get back in?",
               form_data={"registered_email": "tom.becker@example.net"},
               steps=(("assign", SARI),
                      ("reply", SARI, "We can reset two-step sign-in for you. Please confirm "
                                      "the last four digits of the card on your account."),)),
    TicketSpec("refund-1", "member", "payments-and-subscriptions/refunds", "Maria Reyes",
               "maria.reyes@example.org", "Charged after I cancelled",
               "I cancelled on the 3rd but was charged again on the 5th. Please refund.",
               language="fil", form_data={"transaction_id": "TX-88213-PH"},
               steps=(("assign", MIGUEL),
                      ("note", MIGUEL, "Cancellation logged on the 3rd at 22:10; renewal ran "
                                       "at 00:00 UTC on the 5th. Refund is due."),
                      ("reply", MIGUEL, "You are right, we have refunded the charge. It shows "
                                        "on your statement in 3 to 5 working days.",
                       Status.RESOLVED))),
    TicketSpec("failed-1", "member", "payments-and-subscriptions/failed-payments",
               "Budi Santoso", "budi.santoso@example.com", "Kartu saya ditolak",
               "Pembayaran saya ditolak dua kali padahal saldo cukup.", language="id",
               form_data={"billing_center": "CCBill"},
               steps=(("reply", MIGUEL, "Kami sudah memeriksa: bank Anda menolak transaksi "
                                        "internasional. Silakan hubungi bank Anda.",
                       Status.PENDING),
                      ("customer", "Sudah saya aktifkan, sekarang berhasil. Terima kasih!"),
                      ("status", MIGUEL, Status.CLOSED))),
    TicketSpec("subs-1", "member", "payments-and-subscriptions", "Oliver Grant",
               "oliver.grant@example.net", "Two subscriptions on one card",
               "I see two monthly charges from Epoch for the same site.",
               form_data={"billing_center": "Epoch", "transaction_id": "EP-55102"},
               steps=(("assign", MIGUEL),
                      ("escalate", MIGUEL, "Possible duplicate billing; needs a manager's "
                                           "approval for the second refund."))),
    TicketSpec("account-1", "member", "account", "Anna Kowalski", "anna.k@example.com",
               "Please delete my account",
               "I would like my account and all my data deleted.",
               steps=(("assign", SARI), ("status", SARI, Status.ON_HOLD),
                      ("note", SARI, "Waiting for the 14-day cooling-off period to end."))),
    TicketSpec("tech-1", "member", "technical-problems", "Jun Tanaka", "jun.tanaka@example.org",
               "Videos stop after ten seconds",
               "Every video freezes after about ten seconds in Chrome on Windows.",
               form_data={"time_of_incident": "2025-01-14T21:30"},
               steps=(("reply", SARI, "Could you try with extensions switched off and tell us "
                                      "whether it still happens?", Status.OPEN),)),
    TicketSpec("payout-1", "model", "payouts", "Lena Cruz", "lena.cruz@example.com",
               "Payout missing for last week",
               "My weekly payout did not arrive on Friday. My bank details did not change.",
               form_data={"transaction_id": "PO-2025-0113"},
               steps=(("assign", MIGUEL),
                      ("reply", MIGUEL, "The payout was held by our payment partner for a "
                                        "routine check. It is released now.", Status.RESOLVED))),
    TicketSpec("content-1", "model", "content", "Rina Halim", "rina.halim@example.com",
               "My video was taken down by mistake",
               "One of my videos was removed for a copyright claim but it is my own work.",
               language="id", form_data={"time_of_incident": "2025-01-12T08:00"},
               steps=(("assign", SARI),
                      ("note", SARI, "Claim came from an automated filter; ask for the "
                                     "original file's metadata."),)),
    TicketSpec("content-2", "model", "content", "Paolo Bautista", "paolo.b@example.org",
               "Someone re-uploads my content", "I found my videos on another account.",
               language="fil",
               steps=(("reply", SARI, "Thank you, we have removed the copies and suspended "
                                      "the account.", Status.RESOLVED),
                      ("status", SARI, Status.CLOSED))),
    TicketSpec("studio-1", "studio", "payouts", "Nusantara Studio", "finance@example.com",
               "Statement for December",
               "Please send the payout statement for December for our accountant.",
               steps=(("assign", MIGUEL),)),
    TicketSpec("studio-2", "studio", "registration-and-login", "Aurora Media",
               "admin@aurora.example.net", "Add a second manager login",
               "We need a second login for our new office manager.",
               form_data={"registered_email": "admin@aurora.example.net"},
               steps=(("reply", SARI, "Studios can add managers under Settings > Team. "
                                      "Does that work for you?"),)),
]


@dataclass
class DemoResult:
    user_types: int = 0
    categories: int = 0
    staff: int = 0
    tickets_created: int = 0
    tickets_total: int = 0
    translations: int = 0  # added by this run
    admin_password: str | None = None  # set when this run chose or changed it


Progress = Callable[[list[Any], str], Iterable[Any]]


def _no_progress(items: list[Any], _label: str) -> Iterator[Any]:
    yield from items


def load_demo(*, admin_email: str = "admin@loket.test", admin_password: str | None = None,
              progress: Progress = _no_progress) -> DemoResult:
    """Add the demo desk where it is missing; needs an app context and a migrated database."""
    result = DemoResult()
    with db.write_transaction():
        departments = _departments()
        user_types = _user_types()
        result.categories = sum(_categories(user_types[slug], specs, departments)
                                for slug, specs in CATEGORIES.items())
        result.user_types = len(user_types)
        staff, result.admin_password = _staff(admin_email, admin_password, departments)
        result.staff = len(staff)
        result.translations = _translations()
    # The enabled plugins' own demo rows (billing centers...), before the tickets that use them.
    loket().hook.load_demo_data()
    pending = [spec for spec in TICKETS if not _exists(spec)]
    now = utcnow()
    for spec in progress(pending, "Opening demo tickets"):
        _open(spec, user_types, staff, _story_start(spec, now))
        result.tickets_created += 1
    result.tickets_total = len(TICKETS)
    # Plugins add theirs (articles, billing centers...) once core's user types and
    # categories exist.
    loket().hook.load_demo_data()
    return result


def _departments() -> dict[str, Department]:
    found: dict[str, Department] = {}
    for slug, name, escalates_to in DEPARTMENTS:
        department, _ = Department.get_or_create(slug=slug, defaults={"name": name})
        if escalates_to and department.escalates_to_id is None:
            department.escalates_to = found[escalates_to]
            department.save(only=[Department.escalates_to])
        found[slug] = department
    return found


def _user_types() -> dict[str, UserType]:
    return {slug: UserType.get_or_create(slug=slug, defaults={
        "name": name, "description": description, "position": position})[0]
        for position, (slug, name, description) in enumerate(USER_TYPES, start=1)}


def _categories(user_type: UserType, specs: Iterable[CategorySpec],
                departments: dict[str, Department], parent: Category | None = None) -> int:
    count = 0
    for position, spec in enumerate(specs, start=1):
        category, _ = Category.get_or_create(user_type=user_type, slug=spec.slug, defaults={
            "parent": parent, "name": spec.name, "description": spec.description,
            "position": position, "default_priority": spec.priority,
            "default_department": departments[spec.department] if spec.department else None})
        for field_position, extra in enumerate(spec.fields, start=1):
            CategoryField.get_or_create(category=category, name=extra.name, defaults={
                "label": extra.label, "kind": extra.kind, "required": extra.required,
                "choices": extra.choices, "help_text": extra.help_text,
                "position": field_position})
        count += 1 + _categories(user_type, spec.children, departments, category)
    return count


def _translations() -> int:
    """Translations of the demo set-up where none is given yet; how many were added."""
    from .i18n import language_of

    languages = [code for code in TRANSLATED_LANGUAGES
                 if language_of(code) == code and code != language_of(None)]
    have = {(t.model, t.row_id, t.field, t.language)
            for t in Translation.select(Translation.model, Translation.row_id,
                                        Translation.field, Translation.language)}
    added = 0
    for model in (UserType, Category, CategoryField):
        name = model.__name__
        for row in model.select():
            for column in Translation.FIELDS[name]:
                found = TRANSLATIONS.get(getattr(row, column) or "")
                for code in languages:
                    if found is None or (name, row.id, column, code) in have:
                        continue
                    Translation.create(model=name, row_id=row.id, field=column, language=code,
                                       text=found[TRANSLATED_LANGUAGES.index(code)])
                    added += 1
    return added


def _staff(admin_email: str, admin_password: str | None,
           departments: dict[str, Department]) -> tuple[dict[str, Staff], str | None]:
    admin = Staff.get_or_none(Staff.email == admin_email)
    if admin is None and admin_password is None:
        admin_password = secrets.token_urlsafe(12)
    password_hash = hash_password(admin_password) if admin_password else None
    if admin is None:
        admin = Staff.create(email=admin_email, name="Desk Admin", role=Role.ADMIN,
                             password_hash=password_hash)
    elif password_hash:
        admin.password_hash = password_hash
        admin.role, admin.active, admin.failed_logins, admin.locked_until = (
            Role.ADMIN, True, 0, None)
        admin.save()
    staff = {admin_email: admin}
    for email, name, slugs in AGENTS:
        agent, created = Staff.get_or_create(email=email, defaults={
            "name": name, "role": Role.AGENT, "password_hash": password_hash or ""})
        if not created and password_hash:
            agent.password_hash = password_hash
            agent.save(only=[Staff.password_hash])
        for slug in slugs:
            StaffDepartment.get_or_create(staff=agent, department=departments[slug])
        staff[email] = agent
    return staff, admin_password


def _external_id(spec: TicketSpec) -> str:
    return f"demo-{spec.key}"


def _exists(spec: TicketSpec) -> bool:
    return Message.select().where((Message.channel == Channel.WEB)
                                  & (Message.external_id == _external_id(spec))).exists()


def _category(user_type: UserType, path: str) -> Category:
    parent = None
    for slug in path.split("/"):
        parent = Category.get((Category.user_type == user_type) & (Category.slug == slug))
    assert parent is not None
    return parent


def _story_start(spec: TicketSpec, now: dt.datetime) -> dt.datetime:
    """When a demo ticket was opened: spread over the last three weeks, the same on every run."""
    seed = int(hashlib.sha256(spec.key.encode()).hexdigest()[:8], 16)
    return now - dt.timedelta(minutes=60 * 24 * 21 * (seed % 1000) / 1000 + 90)


def _open(spec: TicketSpec, user_types: dict[str, UserType], staff: dict[str, Staff],
          start: dt.datetime) -> Ticket:
    """Open a demo ticket and play its steps through the services, each a while after the last."""
    from .services import tickets as svc

    user_type = user_types[spec.user_type]
    with clock_at(start):
        ticket = svc.open_ticket(
            identity=svc.Identity(IdentityKind.EMAIL, spec.email, name=spec.name,
                                  email=spec.email),
            subject=spec.subject, text=spec.text, channel=Channel.WEB,
            category=_category(user_type, spec.category), user_type_id=user_type.id,
            form_data=spec.form_data, language=spec.language, external_id=_external_id(spec))
    for number, step in enumerate(spec.steps, start=1):
        with clock_at(start + dt.timedelta(minutes=25 * number + 7 * (number % 3))):
            _step(svc, ticket, step, staff)
    return ticket


def _step(svc: Any, ticket: Ticket, step: tuple[str, ...], staff: dict[str, Staff]) -> None:
    action, rest = step[0], step[1:]
    if action == "customer":
        svc.add_customer_reply(ticket, rest[0])
        return
    agent = staff[rest[0]]
    if action == "assign":
        svc.assign(ticket, agent, svc.Actor.agent(agent))
    elif action == "reply":
        svc.reply(ticket, agent, rest[1], status=rest[2] if len(rest) > 2 else Status.PENDING)
    elif action == "note":
        svc.add_note(ticket, agent, rest[1])
    elif action == "status":
        svc.change_status(ticket, rest[1], svc.Actor.agent(agent))
    elif action == "escalate":
        svc.escalate(ticket, svc.Actor.agent(agent), rest[1])
    else:  # pragma: no cover - a typo in TICKETS
        raise ValueError(f"unknown demo step {action!r}")
