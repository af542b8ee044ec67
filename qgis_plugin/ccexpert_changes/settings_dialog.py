"""Settings dialog: backend URL (QgsSettings), API key (QGIS auth database, shown as stored or not, never by its
auth id), the chip limit, a connection test that also checks the key (``/v1/auth/check``), "Copy diagnostics" for
bug reports and a Help button. QGIS's master-password prompt is announced before it appears."""

from __future__ import annotations

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from . import diagnostics, settings
from .about import help_url, tr
from .backend_client import BackendClient, BackendError
from .core.backend_info import backend_summary

MASTER_PROMPT_NOTE = (
    "QGIS will now ask for its master password: it protects the API key in the QGIS authentication database. "
    "If none is set yet, the password you type becomes it."
)


class SettingsDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle(tr("CCExpert settings"))
        self.setMinimumWidth(640)
        self.url_edit = QLineEdit(settings.backend_url())
        self.url_edit.setPlaceholderText("http://127.0.0.1:8000")
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText(tr("leave empty to keep the stored key"))
        self.key_status = QLabel()
        self.key_status.setWordWrap(True)
        self._show_key_status()
        self.max_chips_spin = QSpinBox()
        self.max_chips_spin.setRange(1, 10_000_000)
        self.max_chips_spin.setValue(settings.max_chips())
        self.max_chips_spin.setToolTip(
            tr(
                "The Describe changes dialog asks before it sends more chips than this to "
                "the backend; scripts and qgis_process refuse such runs."
            )
        )
        self.test_button = QPushButton(tr("Test connection"))
        self.diagnostics_button = QPushButton(tr("Copy diagnostics"))
        self.diagnostics_button.setToolTip(
            tr("Versions, backend URL and model, last error, for a bug report; never the API key")
        )
        self.result_view = QPlainTextEdit()
        self.result_view.setReadOnly(True)
        self.result_view.setMinimumHeight(140)
        self.last_info: dict | None = None
        self.last_info_error: str | None = None

        backend = QGroupBox(tr("Backend"))
        form = QFormLayout(backend)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow(tr("Backend URL"), self.url_edit)
        form.addRow(tr("API key"), self.key_edit)
        form.addRow("", self.key_status)
        runs = QGroupBox(tr("Runs"))
        runs_form = QFormLayout(runs)
        runs_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        runs_form.addRow(tr("Ask before runs of more chips than"), self.max_chips_spin)
        actions = QHBoxLayout()
        actions.addWidget(self.test_button)
        actions.addWidget(self.diagnostics_button)
        actions.addStretch(1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Help
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        buttons.helpRequested.connect(lambda: QDesktopServices.openUrl(QUrl(help_url())))
        self.test_button.clicked.connect(self.test_connection)
        self.diagnostics_button.clicked.connect(self.copy_diagnostics)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(backend)
        layout.addWidget(runs)
        layout.addLayout(actions)
        layout.addWidget(self.result_view, 1)
        layout.addWidget(buttons)

    def _show_key_status(self) -> None:
        self.key_status.setText(
            tr("A key is stored in the QGIS authentication database.")
            if settings.authcfg()
            else tr("No key stored: only a backend without API keys will answer.")
        )

    def announce_master_password(self) -> None:
        """Say why QGIS is about to ask for its master password, before it asks."""
        QMessageBox.information(self, tr("CCExpert settings"), tr(MASTER_PROMPT_NOTE))

    def _store_key(self, will_use_stored: bool = False) -> str:
        """Store a newly typed key; the master-password prompt this (or, with ``will_use_stored``, a request
        with the stored key) triggers is announced first."""
        key = self.key_edit.text().strip()
        if key:
            if settings.needs_master_password():
                self.announce_master_password()
            cfg_id = settings.store_api_key(key, settings.authcfg())
            settings.set_authcfg(cfg_id)
            self.key_edit.clear()
            self._show_key_status()
        elif will_use_stored and settings.authcfg() and settings.needs_master_password():
            self.announce_master_password()  # the request decrypts the stored key
        return settings.authcfg()

    def test_connection(self) -> bool:
        """The backend's model, chip size and device in words (a demo model flagged), then whether it accepts the
        key (``/v1/auth/check``); or why it cannot be reached."""
        url = self.url_edit.text().strip()
        try:
            cfg_id = self._store_key(will_use_stored=True)
            client = BackendClient(url, cfg_id, timeout_s=10.0, retries=0)
            info = client.info()
        except (BackendError, RuntimeError) as exc:
            self.last_info, self.last_info_error = None, str(exc)
            text = tr("Connection failed: {0}").format(exc)
            diagnostics.record_error(text)
            self.result_view.setPlainText(text)
            return False
        self.last_info, self.last_info_error = info, None
        lines = backend_summary(info, url)
        ok = True
        try:
            access = client.check_key()
        except BackendError as exc:
            ok = False
            lines.append(tr("API key refused: {0}").format(exc))
            diagnostics.record_error(lines[-1])
        else:
            if access is None:
                lines.append(tr("API key not checked: this backend has no /v1/auth/check (the first run checks it)."))
            elif cfg_id:
                label = access.get("label")
                lines.append(tr("API key accepted") + (f" ({label})." if label else "."))
            else:
                lines.append(tr("This backend needs no API key."))
        self.result_view.setPlainText("\n".join(lines))
        return ok

    def copy_diagnostics(self) -> str:
        """Diagnostics for a bug report on the clipboard (and shown): /v1/info asked again when the last test
        did not get it."""
        url = self.url_edit.text().strip()
        if self.last_info is None:
            try:
                self.last_info = BackendClient(url, "", timeout_s=3.0, retries=0).info()
                self.last_info_error = None
            except BackendError as exc:
                self.last_info_error = str(exc)
        text = diagnostics.collect(url, self.last_info, self.last_info_error)
        QApplication.clipboard().setText(text)
        self.result_view.setPlainText(tr("Copied to the clipboard:") + "\n\n" + text)
        return text

    def save(self) -> None:
        try:
            self._store_key()
        except RuntimeError as exc:
            self.result_view.setPlainText(str(exc))
            return
        settings.set_backend_url(self.url_edit.text())
        settings.set_max_chips(self.max_chips_spin.value())
        provider = QgsApplication.processingRegistry().providerById("ccexpert")
        if provider is not None:  # the algorithm's BACKEND_URL, AUTHCFG and MAX_CHIPS defaults come from here
            provider.refreshAlgorithms()
        self.accept()
