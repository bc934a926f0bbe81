from radbank.cli import main

main()
