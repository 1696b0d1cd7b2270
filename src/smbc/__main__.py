from smbc.cli import main

main()
