from ringex.cli import main

main()
