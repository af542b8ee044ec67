"""Settings dialog: backend URL (QgsSettings), API key (QGIS auth database) and a connection test."""

from __future__ import annotations

from qgis.core import QgsApplication
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from . import settings
from .about import tr
from .backend_client import BackendClient, BackendError
from .core.backend_info import backend_summary


class SettingsDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle(tr("CCExpert settings"))
        self.url_edit = QLineEdit(settings.backend_url())
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText(tr("leave empty to keep the stored key"))
        self.authcfg_label = QLabel(settings.authcfg() or tr("(none)"))
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
        self.result_view = QPlainTextEdit()
        self.result_view.setReadOnly(True)
        form = QFormLayout()
        form.addRow(tr("Backend URL"), self.url_edit)
        form.addRow(tr("API key"), self.key_edit)
        form.addRow(tr("Stored as authentication configuration"), self.authcfg_label)
        form.addRow(tr("Ask before runs of more chips than"), self.max_chips_spin)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        self.test_button.clicked.connect(self.test_connection)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.test_button)
        layout.addWidget(self.result_view)
        layout.addWidget(buttons)

    def _store_key(self) -> str:
        key = self.key_edit.text().strip()
        if key:
            cfg_id = settings.store_api_key(key, settings.authcfg())
            settings.set_authcfg(cfg_id)
            self.key_edit.clear()
            self.authcfg_label.setText(cfg_id)
        return settings.authcfg()

    def test_connection(self) -> bool:
        """Show the backend's model, chip size and device in words (a demo model flagged), or why it cannot be
        reached."""
        try:
            cfg_id = self._store_key()
            info = BackendClient(self.url_edit.text(), cfg_id, timeout_s=10.0, retries=0).info()
        except (BackendError, RuntimeError) as exc:
            self.result_view.setPlainText(tr("Connection failed: {0}").format(exc))
            return False
        self.result_view.setPlainText("\n".join(backend_summary(info, self.url_edit.text().strip())))
        return True

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
