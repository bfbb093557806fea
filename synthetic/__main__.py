"""``python -m synthetic --children N --seed S --out DIR``: generate the synthetic city."""

from synthetic.city import main

raise SystemExit(main())
