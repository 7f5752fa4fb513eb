from mlops_template.entry import main

main()
