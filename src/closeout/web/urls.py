"""Routes of the workbench."""

from django.contrib.auth.views import LogoutView
from django.urls import include, path

from closeout.web import (
    views,
    views_approvals,
    views_archive,
    views_audit,
    views_batches,
    views_config,
    views_diagnostics,
    views_dimensions,
    views_documents,
    views_hold,
    views_imports,
    views_queue,
    views_reports,
)

app_name = "web"

urlpatterns = [
    path("", views_queue.home, name="home"),
    path("login/", views.WorkbenchLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="web:login"), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("queue/<str:doc_type>/", views_queue.queue, name="queue"),
    path(
        "queue/<str:doc_type>/filters/",
        views_queue.queue_filter_save_view,
        name="queue_filter_save",
    ),
    path(
        "queue/<str:doc_type>/filters/<int:pk>/delete/",
        views_queue.queue_filter_delete_view,
        name="queue_filter_delete",
    ),
    path("documents/<int:pk>/", views_documents.document_detail, name="document"),
    path("documents/<int:pk>/close/", views_documents.document_close_view, name="close"),
    path("documents/<int:pk>/reopen/", views_documents.document_reopen_view, name="reopen"),
    path("documents/<int:pk>/hold/", views_hold.document_hold_view, name="hold"),
    path("documents/<int:pk>/release/", views_hold.document_release_view, name="release"),
    path(
        "documents/<int:pk>/dimensions/close/",
        views_dimensions.dimension_close_view,
        name="dimension_close",
    ),
    path(
        "documents/<int:pk>/dimensions/reopen/",
        views_dimensions.dimension_reopen_view,
        name="dimension_reopen",
    ),
    path("inbox/", views_approvals.inbox, name="inbox"),
    path("requests/<int:pk>/", views_approvals.request_detail, name="request"),
    path("batches/new/", views_batches.batch_new, name="batch_new"),
    path("batches/<int:pk>/", views_batches.batch_detail, name="batch"),
    path("batches/<int:pk>/progress/", views_batches.batch_progress, name="batch_progress"),
    path("batches/<int:pk>/results.csv", views_batches.batch_csv, name="batch_csv"),
    path("audit/", views_audit.audit_log, name="audit"),
    path("notifications/", views_audit.notifications, name="notifications"),
    path("archive/", views_archive.archive, name="archive"),
    path("archive/export/", views_archive.archive_export, name="archive_export"),
    path("archive/verify/", views_archive.archive_verify, name="archive_verify"),
    path("diagnostics/", views_diagnostics.diagnostics, name="diagnostics"),
    path("diagnostics/<str:check>/", views_diagnostics.diagnostic, name="diagnostic"),
    path(
        "batches/<int:pk>/verification/",
        views_diagnostics.batch_verification,
        name="batch_verification",
    ),
    path("reports/", views_reports.reports, name="reports"),
    path("reports/group/", views_reports.group_view, name="group"),
    # Import of close instructions (导入结案指令)
    path("imports/", views_imports.imports, name="imports"),
    path("imports/template.<str:fmt>", views_imports.import_template_view, name="import_template"),
    path("imports/<int:pk>/", views_imports.import_detail, name="import"),
    path("imports/<int:pk>/execute/", views_imports.import_execute_view, name="import_execute"),
    path("imports/<int:pk>/report.xlsx", views_imports.import_report, name="import_report"),
    # Configuration (设置): policies with what-if, reason codes, routes, periods, grants, webhooks
    path("config/", include(views_config.urlpatterns)),
]
