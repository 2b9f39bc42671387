"""The one Jinja2 set-up of every page derisk renders: dashboard, analysis report, memo, plan.

Each renderer's own templates come first, then the report's (the SVG pictures in ``_charts.html.j2``);
network text is hostile, so everything is autoescaped and every printed string passes through
:func:`derisk.safetext.finalize`; the catalogues of ``lang`` and the shared filters are installed.
"""

from __future__ import annotations

import gettext

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from derisk.report.formatting import install_filters
from derisk.safetext import finalize


def page_environment(
    package: str, lang: str = "en", translations: gettext.NullTranslations | None = None
) -> Environment:
    """An environment for the templates of ``package`` (``derisk.web``, ``derisk.screen``...) in ``lang``."""
    loaders = [PackageLoader(package, "templates")]
    if package != "derisk.report":
        loaders.append(PackageLoader("derisk.report", "templates"))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=finalize,
    )
    if translations is None:
        from derisk.i18n import gettext_for

        translations = gettext_for(lang)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    install_filters(env, lang)
    return env
