from radbank.launcher import main

main()
