# Databricks notebook source
try:
    # Your Spark logic here
    df = spark.read.table("bronze_data")
    df.write.mode("append").saveAsTable("silver_data")
    
except Exception as e:
    # Log the error and exit with a failure message for the Job UI
    error_msg = f"Task failed: {str(e)}"
    print(error_msg)
    dbutils.notebook.exit(error_msg) 

# COMMAND ----------

print("after exit: must not run")
