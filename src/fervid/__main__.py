from fervid.cli import main

main()
