"""Programs that survive: saved as DSPy's JSON state plus a manifest that keeps what the
JSON does not (field names, metadata) and a fingerprint of the exact prompt the program
renders. Saving reloads and compares the fingerprint; a mismatch fails loudly.

The team's MIPROv2 run pickled to 2 bytes (dill cannot pickle a StringSignature) and its
JSON fallback dropped the demos: neither can happen here. DSPy's JSON matches fields by
position, so the manifest records their names and loading checks them.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path

from dataclasses import dataclass
from typing import TYPE_CHECKING


if TYPE_CHECKING:  # DSPy takes 0.4 s to import: only the functions that need it load it
    import dspy

FORMAT = "po-program/1"
STATE = "program.json"
MANIFEST = "manifest.json"

# The fixed input whose rendered prompt is the program's fingerprint.
FINGERPRINT_INPUT = {
    "concept": "A shared calendar for community clinics, for nurses who swap shifts by phone.",
    "requirements_yaml": "requirements:\n  - id: CLIN-001\n    title: Shift swaps\n    priority: must\n",
    "existing_vision": "",
}


class ProgramError(ValueError):
    """A program that cannot be trusted as it is: one line saying why and what to do."""


AS_WRITTEN = "baseline"  # the reference to the program as written (not the stage of that name)
PROGRAM_REF = f"{AS_WRITTEN} (the program as written), a name under programs/, or a directory"


def program_dir(ws, ref: str) -> Path | None:
    """Where a program reference points: None for `baseline` (the program as written), else
    a saved program's directory: NAME under the workspace's programs/, `programs/NAME`, or
    any directory. The one resolver of references, for the CLI, the stages and the console."""
    if ref == AS_WRITTEN:
        return None
    for path in ((ws.programs_dir / ref) if "/" not in ref else None, ws.root / ref, Path(ref)):
        if path is not None and path.exists():
            return path
    raise ProgramError(f"no program {ref!r}: give {PROGRAM_REF}")


def load_ref(ws, ref: str, *, allow_pickle: bool = False):
    """(program, its directory or None) for a reference, as the workspace's program."""
    path = program_dir(ws, ref)
    new_program = ws.project.new_program
    return (new_program(), None) if path is None else (load_program(path, new_program, allow_pickle=allow_pickle), path)


@dataclass
class SavedProgram:
    name: str
    fingerprint: str  # its first 12 characters
    demos: dict  # predictor -> number of demos
    source: str


def list_programs(ws) -> list[SavedProgram]:
    """The programs saved in a workspace (programs/), by name; reads manifests only."""
    found = []
    for manifest in sorted(ws.programs_dir.glob(f"*/{MANIFEST}")):
        data = json.loads(manifest.read_text())
        found.append(SavedProgram(manifest.parent.name, data["fingerprint"][:12], data["demos"],
                                  data["metadata"].get("source", "")))
    return found


def describe(program: dspy.Module) -> dict:
    """Instructions, fields (in order, with prefixes and descriptions) and demos of each predictor."""
    out = {}
    for name, predictor in program.named_predictors():
        signature = predictor.signature
        fields = [{"name": key, "role": "input" if key in signature.input_fields else "output",
                   "prefix": field.json_schema_extra.get("prefix"), "description": field.json_schema_extra.get("desc")}
                  for key, field in signature.fields.items()]
        demos = [dict(demo.items()) if hasattr(demo, "items") else dict(demo) for demo in predictor.demos]
        out[name] = {"instructions": signature.instructions, "fields": fields, "demos": demos}
    return out


def fingerprint(program: dspy.Module) -> str:
    """sha256 of the messages each predictor renders for FINGERPRINT_INPUT, demos included."""
    import dspy

    adapter = dspy.ChatAdapter()
    digest = hashlib.sha256()
    for name, predictor in sorted(program.named_predictors()):
        inputs = {k: FINGERPRINT_INPUT.get(k, "") for k in predictor.signature.input_fields}
        messages = adapter.format(predictor.signature, demos=predictor.demos, inputs=inputs)
        digest.update(name.encode() + json.dumps(messages, sort_keys=True).encode())
    return digest.hexdigest()


def save_program(program: dspy.Module, directory: Path, new_program, metadata: dict | None = None) -> dict:
    """Write program.json + manifest.json, reload them in a fresh program (`new_program()`) and
    compare fingerprints."""
    import dspy

    directory.mkdir(parents=True, exist_ok=True)
    program.save(str(directory / STATE))
    manifest = {
        "format": FORMAT,
        "dspy_version": dspy.__version__,
        "fingerprint": fingerprint(program),
        "fields": {name: [f["name"] for f in d["fields"]] for name, d in describe(program).items()},
        "demos": {name: len(d["demos"]) for name, d in describe(program).items()},
        "metadata": metadata or {},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    verify_program(directory, new_program)
    return manifest


def load_program(path: Path, new_program, *, allow_pickle: bool = False) -> dspy.Module:
    """A saved program loaded into `new_program()`, checked: field names by position, then the
    prompt fingerprint."""
    import dspy

    path = Path(path)
    if path.suffix in (".pkl", ".pickle", ".dill") or (path / "program.pkl").exists():
        if not allow_pickle:
            raise ProgramError(f"{path}: a pickled program runs code when loaded; refusing it "
                               "(pass --allow-pickle if you trust its origin)")
        return dspy.load(str(path), allow_pickle=True)
    directory = path if path.is_dir() else path.parent
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise ProgramError(f"{directory}: no {MANIFEST} (not a saved po program; `po program import` reads "
                           "other formats)") from None
    program = new_program()
    expected = {name: [f["name"] for f in d["fields"]] for name, d in describe(program).items()}
    for name, fields in manifest["fields"].items():
        if expected.get(name) != fields:
            raise ProgramError(f"{directory}: predictor {name!r} has fields {fields}, this program has "
                               f"{expected.get(name)}: DSPy would match them by position, so it is refused")
    program.load(str(directory / STATE))
    got = fingerprint(program)
    if got != manifest["fingerprint"]:
        raise ProgramError(f"{directory}: the reloaded program renders a different prompt "
                           f"(fingerprint {got[:12]} != saved {manifest['fingerprint'][:12]})")
    return program


def verify_program(directory: Path, new_program) -> str:
    """Reload in a fresh program and compare fingerprints; returns the fingerprint."""
    load_program(directory, new_program)
    return json.loads((Path(directory) / MANIFEST).read_text())["fingerprint"]


def diff_programs(a: dspy.Module, b: dspy.Module, names: tuple[str, str] = ("a", "b")) -> list[str]:
    """What changed between two programs: instructions (unified diff), field texts, demos."""
    lines: list[str] = []
    da, db = describe(a), describe(b)
    for name in sorted(set(da) | set(db)):
        pa, pb = da.get(name), db.get(name)
        if pa is None or pb is None:
            lines.append(f"predictor {name}: only in {names[0] if pb is None else names[1]}")
            continue
        if pa["instructions"] != pb["instructions"]:
            lines.append(f"predictor {name}: instructions differ")
            lines += difflib.unified_diff(pa["instructions"].splitlines(), pb["instructions"].splitlines(),
                                          names[0], names[1], lineterm="")
        for fa, fb in zip(pa["fields"], pb["fields"]):
            for key in ("prefix", "description"):
                if fa[key] != fb[key]:
                    lines.append(f"predictor {name}: field {fa['name']} {key}: {fa[key]!r} -> {fb[key]!r}")
        if pa["demos"] != pb["demos"]:
            lines.append(f"predictor {name}: demos {len(pa['demos'])} -> {len(pb['demos'])}"
                         + ("" if len(pa["demos"]) != len(pb["demos"]) else " (same count, different content)"))
    return lines


def import_dspy_json(path: Path, new_program) -> dspy.Module:
    """A program saved by plain DSPy (`program.save("x.json")`), loaded into `new_program()`.

    DSPy's JSON keeps each predictor's fields as a list (prefix, description) and matches them
    by position; it is refused when its predictors are not the program's, or when a field
    stands where the program has another (its prefix names a different field), or when its
    demos name fields the predictor lacks. Instructions, field texts and demos are kept."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ProgramError(f"{path}: cannot be read as JSON ({exc})") from None
    program = new_program()
    predictors = dict(program.named_predictors())
    saved = {k: v for k, v in data.items() if k != "metadata"}
    if set(saved) != set(predictors):
        raise ProgramError(f"{path}: its predictors are {', '.join(sorted(saved)) or 'none'}; the program's are "
                           f"{', '.join(sorted(predictors))}")
    for name, state in saved.items():
        signature = predictors[name].signature
        names = list(signature.fields)
        fields = (state.get("signature") or {}).get("fields") or []
        if len(fields) != len(names):
            raise ProgramError(f"{path}: predictor {name} has {len(fields)} fields; the program's has {len(names)} "
                               f"({', '.join(names)})")
        by_prefix = {f.json_schema_extra.get("prefix"): n for n, f in signature.fields.items()}
        for position, (field_name, saved_field) in enumerate(zip(names, fields), 1):
            other = by_prefix.get(saved_field.get("prefix"))
            if other is not None and other != field_name:
                raise ProgramError(f"{path}: predictor {name}: field {position} is {other} in the file "
                                   f"({saved_field.get('prefix')!r}) but {field_name} in the program: DSPy matches "
                                   "fields by position, so it is refused")
        for demo in state.get("demos") or []:
            unknown = sorted(set(demo) - set(names) - {"augmented"})
            if unknown:
                raise ProgramError(f"{path}: demos of {name} name {', '.join(unknown)}, not fields of {name} "
                                   f"({', '.join(names)})")
    program.load(str(path))
    return program


def import_components(components_path: Path, new_program, metadata_path: Path | None = None
                      ) -> tuple[dspy.Module, list[str], dict]:
    """The seed's fallback files (program_components.json + metadata.json) as a program.

    Returns (program, what the files lack, metadata). The fallback never wrote demos, so an
    imported program usually has none: the caller tells the user plainly.
    """
    import dspy

    try:
        components = json.loads(Path(components_path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ProgramError(f"{components_path}: cannot be read as JSON ({exc})") from None
    modules = components.get("modules")
    if not isinstance(modules, dict) or not modules:
        raise ProgramError(f"{components_path}: no 'modules' table (expected the seed's program_components.json)")
    program = new_program()
    predictors = dict(program.named_predictors())
    lacks: list[str] = []
    for module_name, module in modules.items():
        name = module_name if module_name in predictors else None
        if name is None:
            raise ProgramError(f"{components_path}: module {module_name!r} is not a predictor of the program "
                               f"(has: {', '.join(predictors)})")
        predictor = predictors[name]
        signature = predictor.signature
        if module.get("instructions"):
            signature = signature.with_instructions(module["instructions"])
        for field_name, field in (module.get("fields") or {}).items():
            if field_name not in signature.fields:
                raise ProgramError(f"{components_path}: field {field_name!r} of {module_name} is not in the signature")
            desc = field.get("desc")
            if desc and desc != "...":
                signature = signature.with_updated_fields(field_name, desc=desc)
            elif desc == "...":
                lacks.append(f"the description of {module_name}.{field_name} (the file says '...')")
        predictor.signature = signature
        demos = module.get("demos")
        if demos:
            inputs = list(predictor.signature.input_fields)
            missing = [k for k in (*inputs, *predictor.signature.output_fields) if k not in demos[0]]
            if missing:
                raise ProgramError(f"{components_path}: demos of {module_name} lack {', '.join(missing)}")
            predictor.demos = [dspy.Example(**d).with_inputs(*inputs) for d in demos]
        else:
            lacks.append(f"the few-shot demos of {module_name} (MIPROv2 bootstrapped them; the fallback "
                         "writer dropped them): re-run the optimization with `po run mipro` to get them back")
    metadata = {}
    if metadata_path:
        try:
            metadata = json.loads(Path(metadata_path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ProgramError(f"{metadata_path}: cannot be read as JSON ({exc})") from None
    return program, lacks, metadata


def review_data(program, ref: str, path: Path | None) -> dict:
    """What `po program show --json` prints and the console's review shows: the program's
    predictors (instructions, fields, demos), its prompt fingerprint and saved metadata."""
    data = {"program": ref, "fingerprint": fingerprint(program), "predictors": describe(program)}
    manifest = path / "manifest.json" if path is not None else None
    if manifest is not None and manifest.exists():
        data["metadata"] = json.loads(manifest.read_text()).get("metadata", {})
    return data


def review(ws, ref: str) -> dict:
    """What the console's program review shows: the saved program (as `review_data`) and
    what changed from the program as written (`diff`), through the same functions as `po
    program show` and `po program diff`. Loading checks field names and the prompt
    fingerprint, so what is shown is what a pipeline would run. {"error": ...} when it
    cannot be loaded (the message names the directory and what is wrong)."""
    try:
        program, path = load_ref(ws, ref)
    except (ProgramError, OSError) as exc:
        return {"error": str(exc)}
    return {**review_data(program, ref, path), "diff": diff_programs(ws.project.new_program(), program,
                                                                     (AS_WRITTEN, path.name if path else ref))}
