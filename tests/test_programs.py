"""Programs that survive: every instruction, field and demo reloads anywhere, or loading fails loudly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dspy
import pytest

from pipeline.product_owner import INPUT_FIELDS, ProductOwnerProgram
from pipeline.saved_programs import (ProgramError, describe, diff_programs, fingerprint, import_components, load_program,
                               save_program)
from tests.conftest import po

SEED = Path(__file__).parent / "fixtures" / "seed"


def optimized() -> ProductOwnerProgram:
    """What MIPROv2 leaves behind: new instructions (a StringSignature) and bootstrapped demos."""
    program = ProductOwnerProgram()
    program.generate.signature = program.generate.signature.with_instructions("Write the vision, then review it.")
    program.generate.demos = [
        dspy.Example(concept=f"Concept {i}", requirements_yaml=f"requirements:\n  - id: R-{i}\n", existing_vision="",
                     product_vision=f"Vision {i} citing R-{i}.", product_owner_review="Verdict: Approved\n- R ok.")
        .with_inputs(*INPUT_FIELDS) for i in range(3)]
    return program


def test_an_optimized_program_reloads_in_a_fresh_process_with_the_same_prompt(tmp_path):
    program = optimized()
    manifest = save_program(program, tmp_path / "opt", ProductOwnerProgram, {"seed": 0})
    assert manifest["demos"] == {"generate": 3}
    code = ("import json,sys; from pipeline.saved_programs import load_program, fingerprint, describe; "
            "from pipeline.product_owner import ProductOwnerProgram; "
            f"p = load_program({str(tmp_path / 'opt')!r}, ProductOwnerProgram); "
            "print(json.dumps({'fp': fingerprint(p), 'd': describe(p)}))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["fp"] == fingerprint(program) == manifest["fingerprint"]
    assert out["d"] == json.loads(json.dumps(describe(program)))
    assert out["d"]["generate"]["instructions"] == "Write the vision, then review it."
    assert [d["product_vision"] for d in out["d"]["generate"]["demos"]] == ["Vision 0 citing R-0.", "Vision 1 citing R-1.",
                                                                          "Vision 2 citing R-2."]


def test_a_state_file_that_lost_its_demos_fails_loudly(tmp_path):
    save_program(optimized(), tmp_path / "opt", ProductOwnerProgram)
    state = json.loads((tmp_path / "opt" / "program.json").read_text())
    state["generate"]["demos"] = []  # what the team's JSON fallback did
    (tmp_path / "opt" / "program.json").write_text(json.dumps(state))
    with pytest.raises(ProgramError, match="renders a different prompt"):
        load_program(tmp_path / "opt", ProductOwnerProgram)


def test_fields_are_checked_by_name_because_dspy_matches_them_by_position(tmp_path):
    save_program(optimized(), tmp_path / "opt", ProductOwnerProgram)
    manifest = json.loads((tmp_path / "opt" / "manifest.json").read_text())
    manifest["fields"]["generate"][3:5] = ["product_owner_review", "product_vision"]
    (tmp_path / "opt" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ProgramError, match="matched by position|match them by position"):
        load_program(tmp_path / "opt", ProductOwnerProgram)


def test_pickled_programs_are_refused_unless_explicitly_allowed(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "program.pkl").write_bytes(b"\x80\x04N.")  # the team's 2-byte pickle
    with pytest.raises(ProgramError, match="--allow-pickle"):
        load_program(tmp_path / "old", ProductOwnerProgram)


def test_diff_shows_instruction_and_demo_changes():
    lines = diff_programs(ProductOwnerProgram(), optimized(), ("baseline", "optimized"))
    assert lines[0] == "predictor generate: instructions differ"
    assert "+Write the vision, then review it." in lines
    assert lines[-1] == "predictor generate: demos 0 -> 3"
    assert diff_programs(optimized(), optimized()) == []


def test_importing_the_seed_fallback_says_plainly_what_it_lacks():
    program, lacks, metadata = import_components(SEED / "program_components.json", ProductOwnerProgram,
                                                   SEED / "metadata.json")
    assert describe(program)["generate"]["instructions"] == ("Generate product vision + review from concept and "
                                                             "requirements.")
    assert any("few-shot demos" in item and "po run mipro" in item for item in lacks)
    assert metadata["model"] == "mistral:7b-instruct" and metadata["valset_size"] == 34


def test_po_program_import_show_verify_export(demo_ws, tmp_path):
    proc = po("program", "import", str(SEED / "program_components.json"), "--metadata", str(SEED / "metadata.json"),
              "--name", "seed", ws=demo_ws)
    assert "imported as programs/seed" in proc.stdout and "lacks the few-shot demos of generate" in proc.stdout
    assert "seed" in po("program", "list", ws=demo_ws).stdout
    shown = json.loads(po("program", "show", "seed", "--json", ws=demo_ws).stdout)
    assert shown["metadata"]["original"]["num_trials"] == 4
    assert "fields, instructions and demos intact" in po("program", "verify", "seed", ws=demo_ws).stdout
    po("program", "export", "seed", "--to", str(tmp_path / "out"), ws=demo_ws)
    assert fingerprint(load_program(tmp_path / "out", ProductOwnerProgram)) == shown["fingerprint"]
    diff = po("program", "diff", "baseline", "seed", ws=demo_ws).stdout
    assert "instructions differ" in diff
    bad = po("program", "show", "nope", ws=demo_ws, check=False)
    assert bad.returncode == 2 and "no program 'nope'" in bad.stderr
