"""README's Safety section names a test for each claim: every one it names exists."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def safety_section() -> str:
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    start = text.index('## Safety')
    return text[start:text.index('\n## ', start + 1)]


def test_every_test_the_safety_section_names_exists():
    named = re.findall(r'`(?:tests/(?:unit|e2e)/)?(test_\w+\.py)(?:::(\w+))?`', safety_section())
    assert len(named) >= 20
    for name, function in named:
        where = [d for d in ('unit', 'e2e') if os.path.exists(os.path.join(ROOT, 'tests', d, name))]
        assert where, name
        with open(os.path.join(ROOT, 'tests', where[0], name), encoding='utf-8') as f:
            source = f.read()
        assert not function or re.search(r'^def %s\(' % function, source, re.M), (name, function)
