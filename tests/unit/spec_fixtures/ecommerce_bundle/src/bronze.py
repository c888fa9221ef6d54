# Databricks notebook source
print("bronze")
