print("list_tables")
