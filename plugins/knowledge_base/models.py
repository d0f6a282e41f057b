"""The knowledge base's tables: articles, their search terms, and what visitors did with them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import peewee as pw

from core.models import BaseModel, Category, Ticket, UserType


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_group() -> str:
    return uuid.uuid4().hex


class Status:
    DRAFT = "draft"
    PUBLISHED = "published"
    CHOICES = ((DRAFT, "Draft"), (PUBLISHED, "Published"))


class Article(BaseModel):
    """One article in one language. Translations of it share a ``group``."""

    group = pw.CharField(max_length=32, default=new_group, index=True)
    language = pw.CharField(max_length=8, default="en")
    category = pw.ForeignKeyField(Category, on_delete="RESTRICT")
    user_type = pw.ForeignKeyField(UserType, on_delete="RESTRICT")  # the category's, on save
    slug = pw.CharField(max_length=120)
    title = pw.CharField(max_length=200)
    body = pw.TextField(default="")  # Markdown, as the admin wrote it
    body_html = pw.TextField(default="")  # rendered and sanitised on save
    status = pw.CharField(max_length=16, default=Status.DRAFT)
    position = pw.IntegerField(default=0)
    last_reviewed = pw.DateField(null=True)
    updated_at = pw.DateTimeField(default=utcnow)
    # The words search matches, analysed in Python (stemmed or affix-stripped); the database's
    # full-text index is built from these by triggers (see migrations/0001_articles.py).
    index_title = pw.TextField(default="")
    index_body = pw.TextField(default="")

    class Meta:
        table_name = "kb_article"
        indexes = ((("group", "language"), True), (("category", "language", "slug"), True),
                   (("category", "status", "position"), False))

    def __str__(self) -> str:
        return f"{self.title} ({self.language})"

    @property
    def is_public(self) -> bool:
        return self.status == Status.PUBLISHED

    def save(self, *args: Any, **kwargs: Any) -> int:
        """Render the body and analyse the words on every save, so search never lags behind."""
        from .render import markdown_to_html
        from .text import analyse, words

        if self.category_id is not None:
            self.user_type_id = Category.get_by_id(self.category_id).user_type_id
        self.body_html = markdown_to_html(self.body)
        self.index_title = " ".join(analyse(self.title, self.language))
        self.index_body = " ".join(analyse(self.body, self.language))
        self.updated_at = utcnow()
        saved = super().save(*args, **kwargs)
        if self.is_public:
            remember_words(self.language, words(f"{self.title} {self.body}"))
        return saved


def remember_words(language: str, found: list[str]) -> None:
    """Add words to the vocabulary typos are corrected to (plain letters, 3 to 32 of them)."""
    fresh = {word for word in found if 3 <= len(word) <= 32 and word.isalpha() and word.isascii()}
    if fresh:
        rows = [{"language": language, "word": word} for word in sorted(fresh)]
        for start in range(0, len(rows), 400):
            Term.insert_many(rows[start:start + 400]).on_conflict_ignore().execute()


class Term(BaseModel):
    """A word of the published articles in one language: the vocabulary typos are corrected to."""

    language = pw.CharField(max_length=8)
    word = pw.CharField(max_length=64)

    class Meta:
        table_name = "kb_term"
        primary_key = pw.CompositeKey("language", "word")


class Vote(BaseModel):
    """'Was this helpful?': one per visitor and article (a unique row, so never counted twice)."""

    article = pw.ForeignKeyField(Article, on_delete="CASCADE")
    visitor = pw.CharField(max_length=64)
    helpful = pw.BooleanField()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "kb_vote"
        indexes = ((("article", "visitor"), True),)


class View(BaseModel):
    """An article page shown to a visitor; ``source`` says how they came (search, suggest...)."""

    article = pw.ForeignKeyField(Article, on_delete="CASCADE")
    visitor = pw.CharField(max_length=64)
    source = pw.CharField(max_length=16, default="")
    created_at = pw.DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "kb_view"
        indexes = ((("article", "created_at"), False),)


class SuggestionShown(BaseModel):
    """An article suggested to a visitor on the ticket form (first time only, per visitor)."""

    article = pw.ForeignKeyField(Article, on_delete="CASCADE")
    visitor = pw.CharField(max_length=64)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "kb_suggestion_shown"
        indexes = ((("article", "visitor"), True),)


class VisitorTicket(BaseModel):
    """A ticket opened from a browser that carries a knowledge-base visitor id."""

    visitor = pw.CharField(max_length=64, index=True)
    ticket = pw.ForeignKeyField(Ticket, on_delete="CASCADE", unique=True)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "kb_visitor_ticket"


class Search(BaseModel):
    """A search from the help center's search page, with how many articles it found."""

    query = pw.CharField(max_length=200)
    language = pw.CharField(max_length=8)
    results = pw.IntegerField()
    created_at = pw.DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "kb_search"


MODELS = [Article, Term, Vote, View, SuggestionShown, VisitorTicket, Search]
