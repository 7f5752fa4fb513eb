from mlops_template.entry import main

raise SystemExit(main())
