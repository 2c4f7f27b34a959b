"""Demo project stages of an invented assembly-line upgrade."""

from datetime import timedelta
from decimal import Decimal

from closeout.demo.base import ENG_DEPT, BuilderBase, DemoEvent, Scenario, half_of, money
from closeout.documents.models import (
    DocType,
    EventKind,
)
from closeout.documents.services import LineInput, document_upsert


class ProjectStageBuilder(BuilderBase):
    def project_stages(self) -> None:
        """Stages of an (invented) assembly-line upgrade; budgets in CNY."""
        unit = self.units[ENG_DEPT]
        stages: list[tuple[str, str, int, list[tuple[str, int, int]]]] = [
            (
                Scenario.ACCEPTED,
                "方案设计 design",
                60,
                [
                    ("需求调研 requirements", 4, 60000),
                    ("布局设计 layout", 6, 120000),
                    ("设计评审 design review", 2, 20000),
                ],
            ),
            (
                Scenario.ACCEPTED,
                "设备采购 equipment purchase",
                5,
                [("招标 tender", 3, 30000), ("设备到货 equipment delivery", 5, 850000)],
            ),
            (
                Scenario.COSTS_PENDING,
                "安装 installation",
                30,
                [("机械安装 mechanical", 8, 240000), ("电气安装 electrical", 6, 160000)],
            ),
            (
                Scenario.OVER_BUDGET,
                "调试 commissioning",
                35,
                [("单机调试 machine tests", 5, 80000), ("联动调试 line test", 3, 60000)],
            ),
            (
                Scenario.TASKS_OPEN,
                "试生产 trial production",
                12,
                [("试生产批次 trial batches", 10, 150000), ("工艺优化 process tuning", 4, 50000)],
            ),
            (
                Scenario.CLOSED_BY_HAND,
                "旧线拆除 old line removal",
                45,
                [("拆除 removal", 8, 90000), ("场地恢复 site restoration", 4, 40000)],
            ),
        ]
        for n, (scenario, title, age, packages) in enumerate(stages, start=1):
            number = f"PS-ASM-{n:02d}"
            start = self.today - timedelta(days=age + 40)
            finish = self.today - timedelta(days=age)
            lines = [
                LineInput(
                    line_no=i + 1,
                    planned_qty=Decimal(tasks),
                    unit_price=money(Decimal(budget) / tasks),
                    description=f"{title} · {name}",
                    unit="任务 task",
                    planned_amount=Decimal(budget),
                )
                for i, (name, tasks, budget) in enumerate(packages)
            ]
            document = document_upsert(
                actor=self.user("erp"),
                doc_type=DocType.PROJECT_STAGE,
                number=number,
                org_unit=unit,
                document_date=start,
                expected_date=finish,
                lines=lines,
            )
            for line in lines:
                tasks = line.planned_qty
                budget = line.planned_amount or Decimal(0)
                done = (
                    tasks
                    if scenario != Scenario.TASKS_OPEN
                    else (tasks * 6 / 10).to_integral_value()
                )
                if scenario == Scenario.CLOSED_BY_HAND:
                    done = (tasks * 3 / 8).to_integral_value()
                cost = budget * Decimal("0.95") * done / tasks
                if scenario == Scenario.OVER_BUDGET and line.line_no == 1:
                    cost = budget * Decimal("1.25")
                half = half_of(done)
                for suffix, qty, day in (
                    ("TASK-A", half, start + timedelta(days=15)),
                    ("TASK-B", done - half, finish - timedelta(days=2)),
                ):
                    if qty > 0:
                        self.post(
                            document,
                            DemoEvent(
                                EventKind.TASK_COMPLETION,
                                f"{line.line_no}-{suffix}",
                                day,
                                line.line_no,
                                qty,
                            ),
                            number,
                            "pm",
                        )
                pending = scenario == Scenario.COSTS_PENDING and line.line_no == 2
                self.post(
                    document,
                    DemoEvent(
                        EventKind.COST_POSTING,
                        f"{line.line_no}-COST",
                        finish - timedelta(days=1),
                        line.line_no,
                        amount=money(cost),
                        pending=pending,
                        note="待财务确认 awaiting finance review" if pending else "",
                    ),
                    number,
                    "pm",
                )
            if scenario in (Scenario.ACCEPTED, Scenario.COSTS_PENDING, Scenario.OVER_BUDGET):
                self.post(
                    document,
                    DemoEvent(EventKind.ACCEPTANCE, "ACCEPT", finish, note="验收通过 accepted"),
                    number,
                    "pm",
                )
            if scenario == Scenario.CLOSED_BY_HAND:
                self.close(
                    "keeper",
                    document,
                    "task_cancelled",
                    "旧线保留作备用，剩余拆除任务取消 the old line stays as a backup; "
                    "the remaining removal work is cancelled",
                    day=finish,
                )
            self.tag(scenario, document)
