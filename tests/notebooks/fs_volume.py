# Databricks notebook source
# MAGIC %md
# MAGIC %fs on `/Volumes/workspace/fs/files/fs-magic`: every command the shorthand offers, the way a notebook writes them.

# COMMAND ----------

# MAGIC %fs mkdirs /Volumes/workspace/fs/files/fs-magic/in/deeper

# COMMAND ----------

# MAGIC %fs put /Volumes/workspace/fs/files/fs-magic/in/hello.txt "hello from %fs put"

# COMMAND ----------

# MAGIC %fs put -f /Volumes/workspace/fs/files/fs-magic/in/hello.txt "hello again from %fs put"

# COMMAND ----------

# MAGIC %fs head /Volumes/workspace/fs/files/fs-magic/in/hello.txt

# COMMAND ----------

# DBTITLE 1,List
# MAGIC %fs ls /Volumes/workspace/fs/files/fs-magic/in

# COMMAND ----------

print("listed", sorted(f.name for f in dbutils.fs.ls("/Volumes/workspace/fs/files/fs-magic/in")))

# COMMAND ----------

# MAGIC %fs cp /Volumes/workspace/fs/files/fs-magic/in/hello.txt /Volumes/workspace/fs/files/fs-magic/copy.txt

# COMMAND ----------

# MAGIC %fs rm -r /Volumes/workspace/fs/files/fs-magic/in

# COMMAND ----------

print("after rm", sorted(f.name for f in dbutils.fs.ls("/Volumes/workspace/fs/files/fs-magic")))
