# Databricks notebook source
dbutils.widgets.text("n", "41")

# COMMAND ----------

# DBTITLE 1,Legacy
# MAGIC %sql
# MAGIC SELECT ${n} + 1 AS legacy;
# MAGIC SELECT ${n} + 2 AS legacy_again

# COMMAND ----------

# DBTITLE 1,Marker
# MAGIC %sql
# MAGIC SELECT CAST(:n AS INT) + 1 AS marker

# COMMAND ----------

print("done")
