from smbc.cli.main import main

main()
