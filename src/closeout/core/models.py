"""Master data shared by every module: organisation units, partners and items."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OrgUnit(models.Model):
    """A company or department; `path` ("/1/4/") makes "this unit and descendants" one filter."""

    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=400, db_index=True, editable=False, default="")

    class Meta:
        verbose_name = _("organisation unit")
        verbose_name_plural = _("organisation units")
        ordering = ["path"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def is_within(self, ancestor: "OrgUnit") -> bool:
        return self.path.startswith(ancestor.path)


class PartnerKind(models.TextChoices):
    SUPPLIER = "supplier", _("supplier")
    CUSTOMER = "customer", _("customer")
    BOTH = "both", _("both")


class Partner(models.Model):
    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(max_length=10, choices=PartnerKind.choices)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Item(models.Model):
    code = models.CharField(_("code"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=200)
    unit = models.CharField(_("unit"), max_length=20, default="EA")

    class Meta:
        verbose_name = _("item")
        verbose_name_plural = _("items")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Counter(models.Model):
    """A shared counter with an expiry: login failures, lockouts and API rate-limit windows
    when no shared cache (CACHE_URL) is configured (see core/counters.py)."""

    key = models.CharField(max_length=200, unique=True)
    value = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("counter")
        verbose_name_plural = _("counters")

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"


class Company(models.Model):
    """An organisation unit that is a company (公司): the top of its part of the tree, with its
    base currency, time zone and fiscal calendar. Its units are those whose nearest company
    ancestor it is; its documents, partner links and accounting periods are its own."""

    unit = models.OneToOneField(
        OrgUnit, primary_key=True, on_delete=models.PROTECT, related_name="company_profile"
    )
    base_currency = models.CharField(_("base currency"), max_length=3, default="CNY")
    time_zone = models.CharField(_("time zone"), max_length=60, default="Asia/Shanghai")
    fiscal_year_start_month = models.PositiveSmallIntegerField(_("fiscal year start"), default=1)

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["unit__code"]

    def __str__(self) -> str:
        return f"{self.unit.code} {self.unit.name}"

    @property
    def code(self) -> str:
        return self.unit.code

    @property
    def name(self) -> str:
        return self.unit.name


class ExchangeRate(models.Model):
    """One rate of a named rate table (汇率表): 1 `currency` = `rate` `to_currency` from `day`
    on (until the table's next rate for the pair). Group reports say which table and which
    rates they used."""

    table = models.CharField(_("rate table"), max_length=40)
    currency = models.CharField(_("currency"), max_length=3)
    to_currency = models.CharField(_("to currency"), max_length=3)
    day = models.DateField(_("from"))
    rate = models.DecimalField(_("rate"), max_digits=18, decimal_places=8)

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["table", "currency", "to_currency", "-day"]
        constraints = [
            models.UniqueConstraint(
                fields=["table", "currency", "to_currency", "day"], name="exchange_rate_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.table} {self.day} 1 {self.currency} = {self.rate} {self.to_currency}"
