from steve.cli.main import main

main()
