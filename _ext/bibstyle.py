"""The book's bibliography style: titles as published, "et al." for long author lists.

pybtex's ``unsrt`` style lower-cases every title but its first letter ("Hyperboliclr") and lists
every author. This style keeps each title's own capitalisation and shortens lists of more than
``MAX_AUTHORS`` authors (or lists ending in BibTeX's ``and others``) to the first author and
"et al.". Registered as the pybtex style ``hyperlr`` when Sphinx loads this extension.
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.template import FieldIsMissing, field, join, node, sentence

MAX_AUTHORS = 3


@node
def names_et_al(children, context, role, **kwargs):
    """The persons of ``role``, joined as ``names`` joins them, or "First et al." when long."""
    try:
        persons = context["entry"].persons[role]
    except KeyError:  # optional[...] parts of the template expect this error for absent roles
        raise FieldIsMissing(role, context["entry"]) from None
    style = context["style"]
    truncated = len(persons) > MAX_AUTHORS or str(persons[-1]) == "others"
    if truncated:
        first = style.format_name(persons[0], style.abbreviate_names)
        return join[first, Text(" et al.")].format_data(context)
    formatted = [style.format_name(person, style.abbreviate_names) for person in persons]
    return join(**kwargs)[formatted].format_data(context)


class BookStyle(UnsrtStyle):
    def format_names(self, role, as_sentence=True):
        formatted = names_et_al(role, sep=", ", sep2=" and ", last_sep=", and ")
        return sentence[formatted] if as_sentence else formatted

    def format_title(self, e, which_field, as_sentence=True):
        formatted = field(which_field)
        return sentence[formatted] if as_sentence else formatted


def setup(app):
    register_plugin("pybtex.style.formatting", "hyperlr", BookStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
