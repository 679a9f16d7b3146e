"The package's top-level names."
import subprocess
import sys

import pytest

import contrastrec


def test_every_top_level_name_resolves_to_its_chapter_definition():
    import importlib
    for name, module in contrastrec._MODULE_OF.items():
        assert getattr(contrastrec, name) is getattr(importlib.import_module(f"contrastrec.{module}"), name), name
    assert sorted(contrastrec.__all__) == sorted(contrastrec._MODULE_OF)


def test_importing_the_package_does_not_load_tensorflow():
    code = "import sys, contrastrec; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        contrastrec.no_such_name

