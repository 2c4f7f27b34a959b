"""The building blocks of the API's shapes (see `closeout.api.schemas`): decimal text checked
against its column, dates and instants in range, the `In` base of every request body."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from ninja import Schema
from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError, core_schema

from closeout.closing.models import ClosePolicy
from closeout.closing.queue import QueueFilterIn
from closeout.core.inputs import (
    Column,
    date_problem,
    decimal_problem,
    refuse_bad_json,
)
from closeout.documents.services import (
    AMOUNT_COLUMN,
    PRICE_COLUMN,
    QTY_COLUMN,
    RATE_COLUMN,
)

Code = Annotated[str, StringConstraints(min_length=1, max_length=60, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=4000)]

MAX_EVENTS = 10_000
LINE_NO_MAX = 1_000_000


@dataclass(frozen=True)
class DecimalText:
    """Marks a `str` field as a decimal number written as a JSON string ("12.5", "0.0001")
    that fits `column`: `Annotated[str, DecimalText(column)]`. The string is passed on
    stripped; OpenAPI shows the pattern of the column."""

    column: Column
    signed: bool = False

    def check(self, value: str) -> str:
        text = value.strip()
        problem = decimal_problem(text, self.column)
        if not problem and not self.signed and text.startswith("-"):
            problem = "must not be negative"
        if problem:
            raise PydanticCustomError(
                "decimal", "'{value}' {problem}", {"value": text[:40], "problem": problem}
            )
        return text

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "pattern": self.column.pattern(signed=self.signed)}


def _policy_column(name: str) -> Column:
    return Column.of(ClosePolicy._meta.get_field(name))  # type: ignore[arg-type]


Quantity = Annotated[str, DecimalText(QTY_COLUMN)]
SignedQuantity = Annotated[str, DecimalText(QTY_COLUMN, signed=True)]
Amount = Annotated[str, DecimalText(AMOUNT_COLUMN)]
UnitPrice = Annotated[str, DecimalText(PRICE_COLUMN)]
ExchangeRate = Annotated[str, DecimalText(RATE_COLUMN)]
# Every percentage of a policy is numeric(7, 3), every amount numeric(20, 4).
PolicyPercent = Annotated[str, DecimalText(_policy_column("under_qty_pct"))]
PolicyAmount = Annotated[str, DecimalText(_policy_column("amount_tolerance_abs"))]


def _day(value: date) -> date:
    problem = date_problem(value)
    if problem:
        raise PydanticCustomError("date_range", "{problem}", {"problem": problem})
    return value


def _moment(value: datetime) -> datetime:
    _day(value.date())
    return value


# A calendar date, and an instant, between 1900 and 2999.
Day = Annotated[date, AfterValidator(_day)]
Moment = Annotated[datetime, AfterValidator(_moment)]
LineNo = Annotated[int, Field(ge=1, le=LINE_NO_MAX)]
RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]


def _filter_checked(value: dict[str, Any]) -> dict[str, Any]:
    QueueFilterIn.model_validate(value)  # its errors name the key: `filter.min_age_days`
    return value


# A saved queue filter: checked by the one schema the pages, the commands and the batches
# use (closing.queue.QueueFilterIn), passed on as it was sent.
QueueFilterData = Annotated[
    dict[str, Any],
    AfterValidator(_filter_checked),
    WithJsonSchema(QueueFilterIn.model_json_schema()),
]


def refusal(model: str, loc: tuple[str | int, ...], message: str) -> ValidationError:
    """A validation error at `loc` inside a model (raised from its model validators)."""
    error = PydanticCustomError("invalid", "{message}", {"message": message})
    return ValidationError.from_exception_data(
        model, [InitErrorDetails(type=error, loc=loc, input=None)]
    )


class In(Schema):
    """Base of every request body: a JSON object without NUL characters (see the module).

    Replaces ninja's own root validator (same name), which reads any object through its
    attributes: a list such as `[null, null]` would pass as a body whose fields all keep
    their defaults."""

    # Fields whose items another model checks one by one (EventsIn.events).
    unchecked: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(
        cls, values: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo
    ) -> Any:
        return handler(refuse_bad_json(cls.__name__, values, unchecked=cls.unchecked))


def dec(value: Decimal | int | float | None) -> str | None:
    """A stored decimal as its string, trailing zeros kept as stored."""
    if value is None:
        return None
    return str(value if isinstance(value, Decimal) else Decimal(str(value)))


class Error(Schema):
    code: str
    message: str
    details: dict[str, Any]
