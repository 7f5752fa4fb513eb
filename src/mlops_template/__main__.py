from mlops_template.cli import main

main()
