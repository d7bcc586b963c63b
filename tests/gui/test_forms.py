"""ProcedureForm: generated fields, validation on every edit, chip limits, submission."""

from __future__ import annotations

import dataclasses

import pytest
from PyQt5 import QtCore, QtWidgets

from xbarlab.chipdrivers import open_crossbar
from xbarlab.errors import ConfigError, SafetyError, XbarlabError
from xbarlab.gui.forms import ProcedureForm
from xbarlab.procedures.params import specs
from xbarlab.procedures.registry import PROCEDURES

SMALL = "emulator:pcm?rows=16&cols=16&seed=1"


@pytest.fixture(scope="module")
def chip_info():
    with open_crossbar(SMALL) as xbar:
        return xbar.info


@pytest.fixture
def make_form(qtbot, chip_info):
    """A form for a procedure name, on the 16 x 16 chip unless told otherwise; closed after."""

    def make(name, info=chip_info):
        form = ProcedureForm(PROCEDURES[name], info)
        qtbot.addWidget(form)
        return form

    return make


def error_text(form, name):
    """The error label below a field, if shown."""
    label = form._fields[name].error
    return label.text() if not label.isHidden() else ""


def click_run(qtbot, form):
    qtbot.mouseClick(form.run_button, QtCore.Qt.LeftButton)


@pytest.mark.parametrize("name", list(PROCEDURES))
def test_every_procedure_gets_a_form_holding_its_defaults(make_form, name):
    form = make_form(name)
    cls = PROCEDURES[name]
    declared = specs(cls.Parameters)
    assert list(form.values()) == [s.name for s in declared]
    assert form.is_valid() and form.run_button.isEnabled() and form.errors() == {}
    assert form.procedure().params == cls.Parameters()
    labels = [w.text() for w in form.findChildren(QtWidgets.QLabel)]
    for s in declared:
        if s.unit:
            assert f"{s.name} [{s.unit}]" in labels
        assert s.help in form.editor(s.name).toolTip()
        assert s.allowed() in form.editor(s.name).toolTip()


def test_editor_kinds_follow_the_declared_types(make_form):
    form = make_form("pulse-response")
    assert isinstance(form.editor("reset_first"), QtWidgets.QCheckBox)
    assert form.editor("reset_first").isChecked()
    assert isinstance(form.editor("amplitude"), QtWidgets.QLineEdit)
    assert form.editor("amplitude").text() == ""  # optional, default None
    program = make_form("program-array")
    combo = program.editor("algorithm")
    assert isinstance(combo, QtWidgets.QComboBox)
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items == ["iterative", "write-verify", "ispp", "fixed-pulse"]
    assert make_form("iv-sweep").editor("voltages").text() == "0.05, 0.1, 0.15, 0.2"


def test_invalid_value_is_marked_and_cannot_be_run(qtbot, make_form):
    form = make_form("program-array")
    with qtbot.waitSignal(form.validity_changed) as valid:
        form.editor("max_iterations").setText("abc")
    assert valid.args == [False]
    assert "max_iterations" in form.errors()
    assert "a number" in error_text(form, "max_iterations")
    assert "c00000" in form.editor("max_iterations").styleSheet()
    assert not form.run_button.isEnabled()
    with qtbot.assertNotEmitted(form.run_requested):
        click_run(qtbot, form)
    with pytest.raises(ConfigError, match="max_iterations"):
        form.procedure()
    with qtbot.waitSignal(form.validity_changed) as valid:
        form.editor("max_iterations").setText("20")
    assert valid.args == [True]
    assert error_text(form, "max_iterations") == ""
    assert form.editor("max_iterations").styleSheet() == ""


@pytest.mark.parametrize(
    ("field", "text", "ok"),
    [
        ("lo", "0", False),  # exclusive lower bound
        ("lo", "0.001", True),
        ("hi", "1", True),  # inclusive upper bound
        ("hi", "1.01", False),
        ("max_iterations", "0", False),
        ("max_iterations", "10000", True),
        ("max_iterations", "10001", False),
        ("max_iterations", "2.5", False),
        ("tolerance", "", True),  # optional: empty is the default
        ("tolerance", "-1e-7", False),
    ],
)
def test_bounds_are_the_declared_ones(make_form, field, text, ok):
    form = make_form("program-array")
    form.editor(field).setText(text)
    assert form.is_valid() is ok
    assert (field in form.errors()) is not ok


def test_cross_field_rule_marks_the_named_field(make_form):
    form = make_form("drift")
    form.set_values({"t_first": "1e6"})
    assert list(form.errors()) == ["t_first"]
    assert "below duration" in error_text(form, "t_first")


def test_read_voltage_above_the_chip_limit_cannot_be_submitted(qtbot, make_form, chip_info):
    form = make_form("iv-sweep")
    limit = chip_info.limits.max_read_voltage
    form.editor("voltages").setText(f"0.1, {limit + 0.1:g}")
    assert "max_read_voltage" in error_text(form, "voltages")
    assert not form.run_button.isEnabled()
    with qtbot.assertNotEmitted(form.run_requested):
        click_run(qtbot, form)
    with pytest.raises(SafetyError, match="max_read_voltage"):
        form.procedure()
    form.set_chip_info(None)  # the same value is fine when no chip is known
    assert form.is_valid()
    form.set_chip_info(chip_info)
    assert not form.is_valid()
    form.editor("voltages").setText(f"0.1, {limit:g}")
    assert form.is_valid()


def test_pulse_above_max_voltage_cannot_be_submitted(make_form, chip_info):
    form = make_form("pulse-response")
    limit = chip_info.limits.max_voltage
    form.editor("amplitude").setText(f"{limit * 1.2:g}")
    assert "max_voltage" in form.errors()["amplitude"]
    assert not form.run_button.isEnabled()
    with pytest.raises(SafetyError, match="max_voltage"):
        form.procedure()
    form.editor("amplitude").setText(f"{limit:g}")
    assert form.is_valid() and form.procedure().params.amplitude == limit


def test_region_outside_the_chip_is_refused(make_form):
    form = make_form("iv-sweep")
    form.editor("region").setText("0:40,0:4")
    assert "16 x 16 chip" in form.errors()["region"]


def test_run_emits_the_validated_procedure(qtbot, make_form):
    form = make_form("pulse-response")
    form.editor("n_pulses").setText("7")
    form.editor("amplitude").setText("1.5")
    form.editor("reset_first").click()
    with qtbot.waitSignal(form.run_requested) as sent:
        click_run(qtbot, form)
    proc = sent.args[0]
    assert proc.name == "pulse-response"
    expected = dataclasses.replace(
        PROCEDURES["pulse-response"].Parameters(), n_pulses=7, amplitude=1.5, reset_first=False
    )
    assert proc.params == expected


def test_set_values_and_reset(make_form):
    form = make_form("iv-sweep")
    form.set_values({"voltages": (0.1, 0.2), "region": "0:2,0:2"})
    assert form.procedure().params.voltages == (0.1, 0.2)
    form.reset()
    assert form.procedure().params == PROCEDURES["iv-sweep"].Parameters()
    with pytest.raises(XbarlabError, match="unknown parameter.*volts"):
        form.set_values({"volts": "0.1"})


def test_an_error_naming_no_parameter_is_shown_for_the_form(qtbot, chip_info):
    class NeedsBigChip(PROCEDURES["iv-sweep"]):
        def check(self, info):
            raise ConfigError(f"this procedure needs 64 rows; the chip has {info.rows}")

    form = ProcedureForm(NeedsBigChip, chip_info)
    qtbot.addWidget(form)
    assert form.errors() == {"": "this procedure needs 64 rows; the chip has 16"}
    assert not form.form_error.isHidden() and "64 rows" in form.form_error.text()
    assert not form.run_button.isEnabled()
    form.set_chip_info(None)
    assert form.is_valid() and form.form_error.isHidden()


def test_a_bad_choice_is_refused_and_the_form_stays_consistent(make_form):
    form = make_form("program-array")
    with pytest.raises(XbarlabError, match="algorithm"):
        form.set_values({"max_iterations": "abc", "algorithm": "magic"})
    assert form.values()["algorithm"] == "iterative"
    assert "max_iterations" in form.errors() and not form.run_button.isEnabled()
