"""The work queue's filter (待结案): its typed input form (`QueueFilterIn`, what the queue page,
the API and `closeout batch create --filter` may send), the filter saved with batch jobs
(`QueueFilter`) and the documents it selects (`document_queue`)."""

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from closeout.closing.dimensions import closed_in, dimension_get
from closeout.closing.selectors import verdict_condition
from closeout.core.errors import InvalidInput
from closeout.core.inputs import MAX_DAYS, date_problem, place, refuse_bad_json
from closeout.core.lookup import org_unit_by_code
from closeout.documents.models import (
    AWAITING_DECISION,
    BusinessEvent,
    CloseState,
    Document,
    EventStatus,
    Line,
)
from closeout.documents.types import spec_for


def _date_or_text(value: Any) -> Any:
    """Dates come as dates (forms) or ISO text (JSON): never as numbers, which pydantic would
    take for Unix times."""
    if value == "":
        return None
    if value is not None and not isinstance(value, str | date):
        raise PydanticCustomError("date_type", "expected a date as YYYY-MM-DD")
    return value


def _date_bounded(value: date | None) -> date | None:
    problem = date_problem(value) if value is not None else ""
    if problem:
        raise PydanticCustomError("date_range", problem)
    return value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


FilterDate = Annotated[date | None, BeforeValidator(_date_or_text), AfterValidator(_date_bounded)]
if TYPE_CHECKING:
    CloseStateName = str
else:
    CloseStateName = Literal[tuple(CloseState.values)]


class QueueFilterIn(BaseModel):
    """The typed form of a queue filter: what the queue page, the API (`filter` of a batch)
    and `closeout batch create --filter` may send. Unknown keys and values of the wrong type
    are refused with the key they name."""

    model_config = ConfigDict(extra="forbid")

    doc_type: StrictStr = Field(default="", max_length=20)
    number: StrictStr = Field(default="", max_length=60)
    partner: StrictStr = Field(default="", max_length=100)
    date_from: FilterDate = None
    date_to: FilterDate = None
    # One state or a list of them; kept as a list.
    close_states: Annotated[
        list[CloseStateName], BeforeValidator(_one_or_many), Field(max_length=10)
    ] = []
    org_unit: StrictStr = Field(default="", max_length=40)
    verdict: Literal["", "ready", "warning", "exception", "blocked"] = ""
    has_quarantined: StrictBool | None = None
    min_age_days: StrictInt | None = Field(default=None, ge=0, le=MAX_DAYS)
    # Close dimensions (关闭维度): a line closed for one and still open for the other, e.g.
    # closed for receiving, invoicing open.
    closed_for: StrictStr = Field(default="", max_length=20)
    open_for: StrictStr = Field(default="", max_length=20)

    @model_validator(mode="before")
    @classmethod
    def _json_object(cls, data: Any) -> Any:
        return refuse_bad_json(cls.__name__, data)

    @model_validator(mode="after")
    def _period(self) -> "QueueFilterIn":
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise PydanticCustomError("date_order", "the period ends before it starts")
        return self


# The work queue's documents before any state is chosen: those still to close (待结案).
STATES_TO_CLOSE = (CloseState.OPEN, CloseState.CLOSE_PENDING, CloseState.ON_HOLD)


@dataclass(frozen=True)
class QueueFilter:
    """The work queue's filter (待结案), also saved with batch jobs."""

    doc_type: str
    number: str = ""
    partner: str = ""
    date_from: date | None = None
    date_to: date | None = None
    close_states: tuple[str, ...] = ()
    org_unit: str = ""
    verdict: str = ""
    has_quarantined: bool | None = None
    min_age_days: int | None = None
    closed_for: str = ""
    open_for: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QueueFilter":
        """A filter from its saved or sent form, checked by `QueueFilterIn`."""
        try:
            checked = QueueFilterIn.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = place(["filter", *error["loc"]])
            raise InvalidInput(
                gettext_noop("%(where)s: %(msg)s"),
                details={"field": where},
                params={"where": where, "msg": error["msg"]},
            ) from exc
        values = checked.model_dump()
        values["close_states"] = tuple(values["close_states"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("date_from", "date_to"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        data["close_states"] = list(self.close_states)
        return data


def document_queue(f: QueueFilter) -> QuerySet[Document]:
    """Documents matching a queue filter, newest first by id (keyset-friendly)."""
    spec_for(f.doc_type)
    qs = Document.objects.filter(doc_type=f.doc_type)
    if f.number:
        # Anywhere in the number, any case: on PostgreSQL a trigram index on UPPER(number)
        # serves it at any size (documents migration 0009).
        qs = qs.filter(number__icontains=f.number.strip())
    if f.partner:
        qs = qs.filter(
            Q(partner__code__iexact=f.partner.strip())
            | Q(partner__name__icontains=f.partner.strip())
        )
    if f.date_from:
        qs = qs.filter(document_date__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(document_date__lte=f.date_to)
    if f.close_states:
        unknown = [s for s in f.close_states if s not in CloseState.values]
        if unknown:
            raise InvalidInput(
                gettext_noop("unknown close state '%(unknown)s'"),
                details={"field": "close_states"},
                params={"unknown": unknown[0]},
            )
        qs = qs.filter(close_state__in=f.close_states)
        if set(f.close_states) <= set(AWAITING_DECISION):
            # The same documents, said so that document_awaiting_idx serves them: no index
            # holds close_state itself (a close would then write every document index).
            qs = qs.filter(awaiting_decision=True)
    if f.org_unit:
        unit = org_unit_by_code(f.org_unit)
        qs = qs.filter(org_unit__path__startswith=unit.path)
    if f.verdict:
        qs = qs.filter(close_state=CloseState.OPEN).filter(verdict_condition(f.doc_type, f.verdict))
    if f.has_quarantined is not None:
        quarantined = BusinessEvent.objects.filter(
            document_id=OuterRef("pk"), status=EventStatus.QUARANTINED
        )
        qs = (
            qs.filter(Exists(quarantined)) if f.has_quarantined else qs.exclude(Exists(quarantined))
        )
    if f.min_age_days is not None:
        qs = qs.filter(document_date__lte=timezone.localdate() - timedelta(days=f.min_age_days))
    if f.closed_for or f.open_for:
        qs = qs.filter(_dimension_condition(f.doc_type, f.closed_for, f.open_for))
    return qs.order_by("-pk")


def _dimension_condition(doc_type: str, closed_for: str, open_for: str) -> Q:
    """Documents with an open line closed for `closed_for` and open for `open_for` (either may
    be empty)."""
    lines = Line.objects.filter(document_id=OuterRef("pk"), close_state=CloseState.OPEN)
    if closed_for:
        lines = lines.filter(closed_in(dimension_get(doc_type, closed_for).code))
    if open_for:
        lines = lines.exclude(closed_in(dimension_get(doc_type, open_for).code))
    return Q(Exists(lines))
