# Databricks notebook source
# MAGIC %md
# MAGIC %fs on `dbfs:/fs-magic`: every command the shorthand offers, the way a notebook writes them.

# COMMAND ----------

# MAGIC %fs mkdirs dbfs:/fs-magic/in/deeper

# COMMAND ----------

# MAGIC %fs put dbfs:/fs-magic/in/hello.txt "hello from %fs put"

# COMMAND ----------

# MAGIC %fs put -f dbfs:/fs-magic/in/hello.txt "hello again from %fs put"

# COMMAND ----------

# MAGIC %fs head dbfs:/fs-magic/in/hello.txt

# COMMAND ----------

# DBTITLE 1,List
# MAGIC %fs ls dbfs:/fs-magic/in

# COMMAND ----------

print("listed", sorted(f.name for f in dbutils.fs.ls("dbfs:/fs-magic/in")))

# COMMAND ----------

# MAGIC %fs cp dbfs:/fs-magic/in/hello.txt dbfs:/fs-magic/copy.txt

# COMMAND ----------

# MAGIC %fs rm -r dbfs:/fs-magic/in

# COMMAND ----------

print("after rm", sorted(f.name for f in dbutils.fs.ls("dbfs:/fs-magic")))
