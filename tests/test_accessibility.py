"""Every console and help center page, in a real Chromium, on a phone and a desktop: axe-core
finds no violation, nothing scrolls sideways on the phone, public form controls are big enough
to tap, and the console's keyboard shortcuts work."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from core import db as core_db
from core.models import CannedReply, Category, Contact, Department, Staff, Ticket, UserType
from core.services import tickets as svc

from .test_browser import Console, browser, live_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
# `./dev test` installs axe-core from the npm registry into .venv/axe (outside git).
AXE = Path(os.environ.get("LOKET_AXE_JS")
           or ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js")

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
# The smallest tap target WCAG 2.2 allows (2.5.8, level AA), in CSS pixels.
MIN_TARGET = 24


@pytest.fixture
def axe_source() -> str:
    if not AXE.is_file():
        pytest.skip(f"axe-core is not installed at {AXE} (`./dev test` installs it from the npm registry)")
    return AXE.read_text(encoding="utf-8")


def _open_desk(app: Any) -> dict[str, Any]:
    """A ticket with a thread and one row of every kind, so no list or edit page is empty."""
    with app.app_context(), core_db.connection():
        member = UserType.get(UserType.slug == "member")
        payments = Category.get(Category.slug == "payments-and-subscriptions")
        agent = Staff.get(Staff.email == "agent@desk.test")
        ticket = svc.open_ticket(
            identity=svc.Identity(kind="email", value="rina@example.com", name="Rina"),
            subject="Charged twice for one month", text="My card was charged twice.",
            category=payments, user_type_id=member.id)
        svc.reply(ticket, agent, "We are looking into it.")
        svc.add_note(ticket, agent, "Checked the payment provider.")
        svc.open_ticket(identity=svc.Identity(kind="email", value="sam@example.com", name="Sam"),
                        subject="Cannot sign in", text="The code never arrives.",
                        category=Category.get(Category.slug == "registration-and-login"),
                        user_type_id=member.id)
        # A name far longer than a chart's label column.
        long_name = Category.create(
            user_type=member, parent=payments, slug="app-store-refunds", position=9,
            name="Refund requests for subscriptions bought through a mobile app store")
        svc.open_ticket(identity=svc.Identity(kind="email", value="ana@example.com", name="Ana"),
                        subject="Refund from the app store", text="Bought on my phone.",
                        category=long_name, user_type_id=member.id)
        canned = CannedReply.create(title="Refund on its way", body="We refunded you.")
        return {
            "ticket": Ticket.get_by_id(ticket.id),
            "ids": {"user_types": member.id, "categories": payments.id,
                    "departments": Department.get(Department.slug == "support").id,
                    "staff": agent.id, "contacts": Contact.get().id,
                    "canned_replies": canned.id},
        }


def console_pages(desk: dict[str, Any]) -> list[str]:
    ticket = desk["ticket"]
    pages = ["/admin/", "/admin/tickets/", f"/admin/ticket/{ticket.id}/", "/admin/plugins/",
             "/admin/profile/", "/admin/categories/new/"]
    for endpoint, row in desk["ids"].items():
        pages += [f"/admin/{endpoint}/", f"/admin/{endpoint}/edit/?id={row}"]
    return pages


def public_pages(desk: dict[str, Any]) -> list[str]:
    ticket = desk["ticket"]
    return ["/", "/help/member/", "/help/member/payments-and-subscriptions/new",
            f"/t/{ticket.id}/{ticket.access_key}"]


def axe_violations(page: Any, source: str) -> list[str]:
    page.add_script_tag(content=source)
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
            + v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | '));
    }""")
    return [f"{page.url}: {line}" for line in found]


def sideways_scroll(page: Any) -> str | None:
    found = page.evaluate("""() => {
        const width = window.innerWidth;
        if (document.scrollingElement.scrollWidth <= width) { return null; }
        const wide = [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > width)
            .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                 + (el.className && el.className.baseVal === undefined ? '.' + el.className : ''));
        return document.scrollingElement.scrollWidth + ' px wide in a ' + width
            + ' px window; too wide: ' + wide.slice(0, 6).join(', ');
    }""")
    return f"{page.url} scrolls sideways: {found}" if found else None


def clipped_chart_text(page: Any) -> list[str]:
    """Chart labels drawn (as the browser measures them) outside their SVG's viewBox."""
    found = page.evaluate("""() => {
        const clipped = [];
        for (const svg of document.querySelectorAll('svg.loket-chart')) {
            const view = svg.viewBox.baseVal;
            for (const text of svg.querySelectorAll('text')) {
                const box = text.getBBox();
                if (box.x < view.x - 0.5 || box.y < view.y - 0.5
                        || box.x + box.width > view.x + view.width + 0.5
                        || box.y + box.height > view.y + view.height + 0.5) {
                    clipped.push(text.textContent + ' at ' + [box.x, box.y, box.width,
                        box.height].map(n => n.toFixed(0)).join(',') + ' in ' + view.width
                        + 'x' + view.height);
                }
            }
        }
        return clipped;
    }""")
    return [f"{page.url}: chart text cut off: {line}" for line in found]


def small_targets(page: Any) -> list[str]:
    """Controls and links shorter than WCAG 2.2's minimum (links inside a sentence excepted)."""
    found = page.evaluate("""(minimum) => {
        const small = [];
        for (const el of document.querySelectorAll(
                'a[href], input:not([type=hidden]), select, textarea, button')) {
            if (el.closest('p, .message-body, .help') && el.tagName === 'A') { continue; }
            const box = el.getBoundingClientRect();
            if (box.width && box.right > 0 && box.height < minimum) {
                small.push((el.name || el.id || el.textContent.trim()) + ': '
                           + box.height.toFixed(1) + ' px');
            }
        }
        return small;
    }""", MIN_TARGET)
    return [f"{page.url}: {line} tall" for line in found]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_page_passes_axe_and_fits_the_screen(live_server: Any, browser: Any,  # noqa: F811
                                                    axe_source: str, viewport: dict) -> None:
    base, app = live_server
    desk = _open_desk(app)
    problems: list[str] = []
    # axe is injected as a script of its own, which the pages' CSP would refuse.
    agent = Console(browser, base, viewport=viewport, bypass_csp=True)
    agent.sign_in("admin@desk.test")
    visitor = Console(browser, base, viewport=viewport, bypass_csp=True)
    for console, pages in ((agent, console_pages(desk)), (visitor, public_pages(desk))):
        for path in pages:
            response = console.go(path)
            assert response is not None and response.ok, f"{path}: {response and response.status}"
            problems += axe_violations(console.page, axe_source)
            problems += clipped_chart_text(console.page)
            if viewport is PHONE:
                problems.append(sideways_scroll(console.page) or "")
            if console is visitor:
                problems += small_targets(console.page)
    problems = [p for p in problems if p]
    assert problems == [], "\n".join(problems)
    # The long category name was shortened on the dashboard, its full text kept as a tooltip.
    agent.go("/admin/")
    assert agent.page.locator("svg.loket-chart text title", has_text="mobile app store").count()
    assert agent.problems == [] and visitor.problems == [], agent.problems + visitor.problems


def test_the_login_page_passes_axe(live_server: Any, browser: Any,  # noqa: F811
                                   axe_source: str) -> None:
    base, _app = live_server
    visitor = Console(browser, base, viewport=PHONE, bypass_csp=True)
    visitor.go("/admin/login")
    assert axe_violations(visitor.page, axe_source) == []
    assert sideways_scroll(visitor.page) is None


def test_a_refused_upload_on_the_phone_names_the_accepted_types(
        live_server: Any, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    base, _app = live_server
    visitor = Console(browser, base, viewport=PHONE)
    visitor.go("/help/member/payments-and-subscriptions/new")
    page = visitor.page
    page.fill("[name=name]", "Rina")
    page.fill("[name=email]", "rina@example.com")
    page.fill("[name=subject]", "Charged twice")
    page.fill("[name=description]", "See the attached statement.")
    program = tmp_path / "statement.exe"
    program.write_bytes(b"MZ\x90\x00" + b"\x00" * 200)
    page.set_input_files("[name=attachments]", str(program))
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    error = page.locator(".errors").inner_text()
    assert "statement.exe" in error
    assert "not accepted" in error
    for name in ("PNG", "JPEG", "PDF", "plain text"):  # the default upload_allowed_types
        assert name in error, error
    assert sideways_scroll(page) is None


def test_keyboard_shortcuts_move_through_the_inbox_and_the_ticket_page(
        live_server: Any, browser: Any) -> None:  # noqa: F811
    base, app = live_server
    _open_desk(app)
    agent = Console(browser, base, viewport=DESKTOP)
    agent.sign_in("agent@desk.test")
    agent.go("/admin/tickets/")
    page = agent.page

    def focused() -> str:
        return page.evaluate("document.activeElement.id || document.activeElement.name"
                             " || document.activeElement.getAttribute('href') || ''")

    # The first ticket is a skip link, Enter and two Tab presses away (was 26 Tabs).
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to tickets"
    page.keyboard.press("Enter")
    for _ in range(2):  # the row's checkbox, then its number
        page.keyboard.press("Tab")
    assert re.fullmatch(r"/admin/ticket/\d+/", focused())
    numbers = page.eval_on_selector_all(
        "#loket-list tbody tr", "rows => rows.map(r => r.querySelector('a').getAttribute('href'))")
    assert len(numbers) == 3
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("j")
    assert focused() == numbers[0]
    page.keyboard.press("j")
    assert focused() == numbers[1]
    assert page.locator("tr.loket-current").count() == 1
    page.keyboard.press("k")
    assert focused() == numbers[0]
    page.keyboard.press("/")
    assert focused() == "search"
    page.keyboard.type("j/k?")  # typing in a field fires nothing
    assert page.input_value("input[name=search]") == "j/k?" and focused() == "search"
    assert not page.locator("#loket-shortcuts").is_visible()
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("?")
    overlay = page.locator("#loket-shortcuts")
    assert overlay.is_visible() and "Go to the inbox" in overlay.inner_text()
    page.keyboard.press("Escape")
    assert not overlay.is_visible()
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_url(re.compile(re.escape(numbers[0]) + "$"))

    # The ticket page: r, n, a and s go to their fields; typing there stays there.
    for key, field in (("r", "reply-text"), ("n", "note-text"), ("a", "assignee"),
                       ("s", "status")):
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press(key)
        assert focused() == field, key
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("r")
    page.keyboard.type("gi and some text")
    assert page.input_value("#reply-text") == "gi and some text"
    assert page.url.endswith(numbers[0])  # typing "gi" in the reply went nowhere
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("g")
    page.keyboard.press("i")
    page.wait_for_url(re.compile(r"/admin/tickets/$"))
    assert agent.problems == [], agent.problems
