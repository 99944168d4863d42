"""What the people of the load run type into the list's search box: names, pinyin, initials, phone digits, words of
company names. Shared by bench/locustfile.py and bench/request_cost.py."""

SEARCHES = ["王", "李", "张伟", "wang", "zw", "liu", "138", "1390", "公司", "科技"]
