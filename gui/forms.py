"""ProcedureForm: a parameter form generated from a procedure's declared parameters.

The form is derived, never written by hand: every field comes from
:func:`xbarlab.procedures.params.specs` (name, type, unit, bounds, choices, help), so a
new procedure or parameter appears in the GUI without touching this file. Labels name
the unit, the help and the allowed range are the tooltip. Editors: a check box for a
bool, a combo box for choices, a line edit for everything else (numbers, optional
values, comma-separated lists). Numbers are typed, not spun: a spin box silently clamps
a typed value to its range, whereas here every value goes through the one validator,
:func:`~xbarlab.procedures.params.parse`, and a bad one is shown with its message.

Every edit re-validates the whole form: the per-field conversion, the cross-field rules
of the Parameters dataclass, and, when a chip is known, :meth:`Procedure.check` against
its :class:`~xbarlab.chipdrivers.crossbar.ChipInfo` (e.g. a read voltage above
``max_read_voltage`` or a pulse above ``max_voltage``). A field in error turns red with
the error text beside it and the Run button is disabled: such a procedure cannot be
submitted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from PyQt5 import QtCore, QtWidgets

from xbarlab.errors import XbarlabError
from xbarlab.procedures import params as P

#: style of an editor holding a bad value, and of the error text
_BAD_STYLE = "background-color: #ffd6d6; border: 1px solid #c00000;"
_ERROR_STYLE = "color: #c00000;"


def format_value(spec: P.ParamSpec, value) -> Any:
    """The editor value showing ``value`` (text for line edits, bool or str otherwise)."""
    if spec.type is bool and not spec.is_list:
        return bool(value)
    if value is None:
        return ""
    if spec.is_list:
        return ", ".join(_text(v) for v in value)
    return _text(value)


def _text(value) -> str:
    """Shortest text that reads back as exactly ``value`` (``86400``, not ``86400.0``)."""
    text = repr(value) if isinstance(value, float) else str(value)
    return text.removesuffix(".0")


def label_text(spec: P.ParamSpec) -> str:
    """``name [unit]``, the label of a field."""
    return f"{spec.name} [{spec.unit}]" if spec.unit else spec.name


def tooltip(spec: P.ParamSpec) -> str:
    """Help, type, allowed values and default of a field, for its tooltip."""
    default = format_value(spec, spec.default)
    lines = [
        spec.help or spec.name,
        f"type: {spec.type_name}" + (f", unit: {spec.unit}" if spec.unit else ""),
        f"allowed: {spec.allowed()}",
        f"default: {default if default != '' else 'none (empty)'}",
    ]
    if spec.is_list:
        lines.append("several values: separate them with commas")
    return "\n".join(lines)


class _Field:
    """One parameter's editor and error label; ``value()`` is the raw editor value."""

    def __init__(self, spec: P.ParamSpec, on_edit):
        self.spec = spec
        self.error = QtWidgets.QLabel()
        self.error.setStyleSheet(_ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        if spec.type is bool and not spec.is_list:
            self.editor = QtWidgets.QCheckBox()
            self.editor.stateChanged.connect(on_edit)
        elif spec.choices is not None and not spec.is_list:
            self.editor = QtWidgets.QComboBox()
            if spec.optional:
                self.editor.addItem("")
            self.editor.addItems([str(c) for c in spec.choices])
            self.editor.currentIndexChanged.connect(on_edit)
        else:
            self.editor = QtWidgets.QLineEdit()
            self.editor.setPlaceholderText("empty: default" if spec.optional else spec.allowed())
            self.editor.textChanged.connect(on_edit)
        self.editor.setObjectName(spec.name)
        self.editor.setToolTip(tooltip(spec))
        self.set(spec.default)

    def value(self):
        if isinstance(self.editor, QtWidgets.QCheckBox):
            return self.editor.isChecked()
        if isinstance(self.editor, QtWidgets.QComboBox):
            return self.editor.currentText()
        return self.editor.text()

    def set(self, value) -> None:
        """Show ``value`` (typed, or text as typed by a user); no edit signal."""
        shown = value if isinstance(value, str) else format_value(self.spec, value)
        with QtCore.QSignalBlocker(self.editor):
            if isinstance(self.editor, QtWidgets.QCheckBox):
                self.editor.setChecked(P.convert(self.spec, shown))
            elif isinstance(self.editor, QtWidgets.QComboBox):
                index = self.editor.findText(str(shown))
                if index < 0:
                    raise XbarlabError(
                        f"parameter {self.spec.name} = {value!r}: need {self.spec.allowed()}"
                    )
                self.editor.setCurrentIndex(index)
            else:
                self.editor.setText(shown)

    def show_error(self, message: str | None) -> None:
        self.editor.setStyleSheet(_BAD_STYLE if message else "")
        self.error.setText(message or "")
        self.error.setVisible(bool(message))


class ProcedureForm(QtWidgets.QWidget):
    """A form for one procedure class, validated on every edit.

    Parameters
    ----------
    procedure_cls : type of Procedure
        A registered procedure class (``procedures.registry.PROCEDURES[name]``).
    chip_info : ChipInfo, optional
        The connected chip: values beyond its limits are refused. None: no chip checks.
    parent : QWidget, optional

    Signals
    -------
    run_requested(object)
        The validated :class:`~xbarlab.procedures.base.Procedure`, when Run is pressed.
    validity_changed(bool)
        Whether the form holds a submittable procedure, whenever that changes.
    """

    run_requested = QtCore.pyqtSignal(object)
    validity_changed = QtCore.pyqtSignal(bool)

    def __init__(self, procedure_cls, chip_info=None, parent=None):
        super().__init__(parent)
        self.procedure_cls = procedure_cls
        self._chip_info = chip_info
        self._procedure = None
        self._errors: dict[str, str] = {}
        self._valid: bool | None = None
        specs = P.specs(procedure_cls.Parameters)
        self._fields = {s.name: _Field(s, self._validate) for s in specs}
        self._build()
        self._validate()

    def _build(self) -> None:
        title = QtWidgets.QLabel(f"<b>{self.procedure_cls.name}</b>")
        summary = QtWidgets.QLabel(self.procedure_cls.summary_doc)
        summary.setWordWrap(True)
        form = QtWidgets.QFormLayout()
        for f in self._fields.values():
            cell = QtWidgets.QVBoxLayout()
            cell.setSpacing(0)
            cell.addWidget(f.editor)
            cell.addWidget(f.error)
            label = QtWidgets.QLabel(label_text(f.spec))
            label.setToolTip(f.editor.toolTip())
            form.addRow(label, cell)
        self.form_error = QtWidgets.QLabel()
        self.form_error.setStyleSheet(_ERROR_STYLE)
        self.form_error.setWordWrap(True)
        self.form_error.hide()
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.clicked.connect(self._on_run)
        defaults = QtWidgets.QPushButton("Defaults")
        defaults.setToolTip("reset every field to its declared default")
        defaults.clicked.connect(self.reset)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(defaults)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        layout = QtWidgets.QVBoxLayout(self)
        for item in (title, summary):
            layout.addWidget(item)
        layout.addLayout(form)
        layout.addWidget(self.form_error)
        layout.addLayout(buttons)
        layout.addStretch(1)

    # -- public API ------------------------------------------------------------------

    @property
    def chip_info(self):
        """The ChipInfo the form checks against (None: no chip known)."""
        return self._chip_info

    def set_chip_info(self, info) -> None:
        """Check against another chip's limits from now on (None: no chip checks)."""
        self._chip_info = info
        self._validate()

    def editor(self, name: str) -> QtWidgets.QWidget:
        """The editor widget of parameter ``name`` (for tests and screenshots)."""
        return self._fields[name].editor

    def values(self) -> dict[str, Any]:
        """The raw editor values by parameter name (text, bool or choice)."""
        return {name: f.value() for name, f in self._fields.items()}

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Fill fields from typed values or text (unknown names: XbarlabError); re-validates."""
        unknown = sorted(set(values) - set(self._fields))
        if unknown:
            raise XbarlabError(
                f"unknown parameter(s) {', '.join(unknown)} of {self.procedure_cls.name}; "
                f"known: {', '.join(self._fields)}"
            )
        try:
            for name, value in values.items():
                self._fields[name].set(value)
        finally:
            self._validate()

    def reset(self) -> None:
        """Every field back to its declared default."""
        self.set_values({name: f.spec.default for name, f in self._fields.items()})

    def errors(self) -> dict[str, str]:
        """Current error messages by parameter name ("" for a form-level error)."""
        return dict(self._errors)

    def is_valid(self) -> bool:
        """Whether the form holds a procedure that may be submitted."""
        return self._procedure is not None

    def procedure(self):
        """The validated Procedure; raises the ConfigError/SafetyError shown in the form."""
        procedure = self._build_procedure(self.values())
        if isinstance(procedure, Exception):
            raise procedure
        return procedure

    # -- validation ------------------------------------------------------------------

    def _validate(self, *_) -> None:
        """Re-check everything, show the errors, enable Run only when it all passes."""
        raw = self.values()
        errors = {}
        for name, f in self._fields.items():
            try:
                P.convert(f.spec, raw[name])
            except XbarlabError as exc:
                errors[name] = str(exc)
        procedure = None
        if not errors:
            result = self._build_procedure(raw)
            if isinstance(result, Exception):
                errors[self._field_of(str(result))] = str(result)
            else:
                procedure = result
        self._show(errors)
        self._procedure = procedure
        valid = procedure is not None
        self.run_button.setEnabled(valid)
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)

    def _build_procedure(self, raw: Mapping[str, Any]):
        """The checked Procedure for ``raw`` values, or the exception refusing it."""
        try:
            procedure = self.procedure_cls.from_values(raw)
            if self._chip_info is not None:
                procedure.check(self._chip_info)
        except XbarlabError as exc:
            return exc
        return procedure

    def _field_of(self, message: str) -> str:
        """The parameter a message is about ("" if none is named).

        Messages say ``parameter NAME ...``; limit errors name the quantity instead
        (``pulse amplitude = ...``), so a whole-word match of a parameter name is used
        next, longest name first.
        """
        named = re.search(r"parameters? (\w+)", message)
        if named and named.group(1) in self._fields:
            return named.group(1)
        for name in sorted(self._fields, key=len, reverse=True):
            if re.search(rf"\b{re.escape(name)}\b", message):
                return name
        return ""

    def _show(self, errors: dict[str, str]) -> None:
        self._errors = errors
        for name, f in self._fields.items():
            f.show_error(errors.get(name))
        self.form_error.setText(errors.get("", ""))
        self.form_error.setVisible("" in errors)

    def _on_run(self) -> None:
        if self._procedure is not None:
            self.run_requested.emit(self._procedure)
