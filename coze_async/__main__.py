"""``python -m coze_async`` runs the ``coze-async`` command."""

from .cli import main

raise SystemExit(main())
