from obhut.cli.main import main

main()
