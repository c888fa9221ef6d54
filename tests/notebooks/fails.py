# Databricks notebook source
print("before the failure")

# COMMAND ----------

# DBTITLE 1,Validate
def validate(rows):
    if rows == 0:
        raise ValueError("boom")

validate(0)

# COMMAND ----------

print("after the failure: must not run")
