"""Master data shared by every module: organisation units, partners and items."""

from django.db import models


class OrgUnit(models.Model):
    """A company or department; `path` ("/1/4/") makes "this unit and descendants" one filter."""

    code = models.CharField("编码 code", max_length=40, unique=True)
    name = models.CharField("名称 name", max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=400, db_index=True, editable=False, default="")

    class Meta:
        verbose_name = "组织 organisation unit"
        verbose_name_plural = "组织 organisation units"
        ordering = ["path"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def is_within(self, ancestor: "OrgUnit") -> bool:
        return self.path.startswith(ancestor.path)


class PartnerKind(models.TextChoices):
    SUPPLIER = "supplier", "供应商 supplier"
    CUSTOMER = "customer", "客户 customer"
    BOTH = "both", "供应商兼客户 both"


class Partner(models.Model):
    code = models.CharField("编码 code", max_length=40, unique=True)
    name = models.CharField("名称 name", max_length=200)
    kind = models.CharField(max_length=10, choices=PartnerKind.choices)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "往来单位 partner"
        verbose_name_plural = "往来单位 partners"

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Item(models.Model):
    code = models.CharField("编码 code", max_length=60, unique=True)
    name = models.CharField("名称 name", max_length=200)
    unit = models.CharField("单位 unit", max_length=20, default="EA")

    class Meta:
        verbose_name = "物料 item"
        verbose_name_plural = "物料 items"

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Counter(models.Model):
    """A shared counter with an expiry: login failures, lockouts and API rate-limit windows
    when no shared cache (CACHE_URL) is configured (see core/counters.py)."""

    key = models.CharField(max_length=200, unique=True)
    value = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "计数器 counter"
        verbose_name_plural = "计数器 counters"

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"


class Company(models.Model):
    """An organisation unit that is a company (公司): the top of its part of the tree, with its
    base currency, time zone and fiscal calendar. Its units are those whose nearest company
    ancestor it is; its documents, partner links and accounting periods are its own."""

    unit = models.OneToOneField(
        OrgUnit, primary_key=True, on_delete=models.PROTECT, related_name="company_profile"
    )
    base_currency = models.CharField("本位币 base currency", max_length=3, default="CNY")
    time_zone = models.CharField("时区 time zone", max_length=60, default="Asia/Shanghai")
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        "会计年度起始月 fiscal year start", default=1
    )

    class Meta:
        verbose_name = "公司 company"
        verbose_name_plural = "公司 companies"
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

    table = models.CharField("汇率表 rate table", max_length=40)
    currency = models.CharField("币别 currency", max_length=3)
    to_currency = models.CharField("折算币别 to currency", max_length=3)
    day = models.DateField("生效日期 from")
    rate = models.DecimalField("汇率 rate", max_digits=18, decimal_places=8)

    class Meta:
        verbose_name = "汇率 exchange rate"
        verbose_name_plural = "汇率 exchange rates"
        ordering = ["table", "currency", "to_currency", "-day"]
        constraints = [
            models.UniqueConstraint(
                fields=["table", "currency", "to_currency", "day"], name="exchange_rate_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.table} {self.day} 1 {self.currency} = {self.rate} {self.to_currency}"
